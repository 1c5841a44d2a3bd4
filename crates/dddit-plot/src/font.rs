//! The embedded 8×8 bitmap font used for PNG text (font8x8's public-domain basic Latin set), so
//! rendering never needs a system font; non-ASCII symbols common in result labels are spelled
//! out in ASCII first.

use font8x8::UnicodeFonts;

/// Width and height of one glyph cell at scale 1, in pixels.
pub(crate) const GLYPH: u32 = 8;

/// `s` rewritten for the ASCII-only bitmap font: common symbols become ASCII spellings (`±` →
/// `+-`, `≤` → `<=`, `∈` → `in`, `λ` → `lambda`, `·` → `*`, …), control characters become
/// spaces and anything else outside ASCII becomes `?`.
pub(crate) fn to_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let rep: &str = match c {
            c if c.is_ascii_control() || c.is_control() => " ",
            c if c.is_ascii() => {
                out.push(c);
                continue;
            }
            '±' => "+-",
            '∓' => "-+",
            '≤' => "<=",
            '≥' => ">=",
            '≠' => "!=",
            '≈' => "~",
            '∈' => "in",
            '→' => "->",
            '←' => "<-",
            '·' | '⋅' | '∙' => "*",
            '×' => "x",
            '÷' => "/",
            '−' | '–' | '—' | '‐' => "-",
            '…' => "...",
            '°' => "deg",
            '²' => "^2",
            '³' => "^3",
            '√' => "sqrt",
            '∞' => "inf",
            'λ' => "lambda",
            'α' => "alpha",
            'β' => "beta",
            'γ' => "gamma",
            'δ' => "delta",
            'Δ' => "Delta",
            'ε' => "eps",
            'η' => "eta",
            'θ' => "theta",
            'μ' | 'µ' => "u",
            'π' => "pi",
            'ρ' => "rho",
            'σ' => "sigma",
            'τ' => "tau",
            '‘' | '’' => "'",
            '“' | '”' => "\"",
            '\u{a0}' => " ",
            _ => "?",
        };
        out.push_str(rep);
    }
    out
}

/// How many glyph cells `s` takes once rewritten by [`to_ascii`].
pub(crate) fn ascii_len(s: &str) -> usize {
    to_ascii(s).chars().count()
}

/// The 8 rows of `c`'s glyph, bit 0 being the leftmost pixel; `?` for characters outside the
/// font.
pub(crate) fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS.get(c).or_else(|| font8x8::BASIC_FONTS.get('?')).unwrap_or([0; 8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_spelled_in_ascii() {
        assert_eq!(to_ascii("FD ± std"), "FD +- std");
        assert_eq!(to_ascii("t ∈ [0, 250) · λ ≤ 2"), "t in [0, 250) * lambda <= 2");
        assert_eq!(to_ascii("a\tb\nc"), "a b c");
        assert_eq!(to_ascii("日本"), "??");
        assert_eq!(ascii_len("λ"), 6);
        assert!(to_ascii("µσ—…").is_ascii());
    }

    #[test]
    fn glyphs() {
        // 'A' has pixels, space has none, and characters outside the font draw as '?'.
        assert!(glyph('A').iter().any(|&r| r != 0));
        assert!(glyph(' ').iter().all(|&r| r == 0));
        assert_eq!(glyph('日'), glyph('?'));
        assert_ne!(glyph('?'), glyph('A'));
    }
}
