//! A small reader for the `data.pkl` of a TorchScript archive: the pickle (protocol 2) that
//! describes a scripted module's attributes, with tensors stored beside it in `data/N`.
//!
//! burn-store's `PytorchReader` reads `torch.save` files but refuses TorchScript classes
//! (`__torch__.…`), so this reader handles the opcodes such archives use: `GLOBAL`, `NEWOBJ`,
//! `REDUCE`, `BUILD`, `BINPERSID`, tuples, lists, dicts, ints, floats, strings and the memo,
//! with the callables such archives name: `torch._utils._rebuild_tensor_v2`,
//! `collections.OrderedDict` and `torch.jit._pickle.build_intlist` (and its siblings). Objects
//! are kept in an arena so that the memo shares them as Python does.

use std::collections::{BTreeMap, HashMap};

/// Index of a value in the arena.
type Id = usize;

/// A pickled value.
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// A float (no attribute this loader reads is one).
    Float,
    Str(String),
    Bytes,
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// A class or function named by `GLOBAL`.
    Global(String),
    /// An instance built by `NEWOBJ` or by `REDUCE` on a class, with its `BUILD` state.
    Object {
        class: String,
        state: Option<Id>,
    },
    /// A persistent id (`BINPERSID`): the tuple naming a storage.
    Persistent(Id),
    /// A tensor rebuilt by `torch._utils._rebuild_tensor_v2`.
    Tensor(TensorMeta),
}

/// Where a tensor's data lives and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorMeta {
    /// Entry name of the storage under `data/`.
    pub storage: String,
    /// Storage class (`FloatStorage`, …).
    pub storage_type: String,
    /// Offset into the storage, in elements.
    pub offset: usize,
    /// Shape.
    pub shape: Vec<usize>,
    /// Strides, in elements.
    pub stride: Vec<usize>,
}

/// A scripted module flattened to dotted attribute paths (`net.layers.conv.weight`).
#[derive(Debug, Default, Clone)]
pub(crate) struct ScriptModule {
    /// Class name of every sub-object, by path (`""` for the root).
    pub classes: BTreeMap<String, String>,
    /// Every tensor attribute.
    pub tensors: BTreeMap<String, TensorMeta>,
    /// Every integer attribute, and every list or tuple of integers.
    pub ints: BTreeMap<String, Vec<i64>>,
}

/// The parser state.
struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    arena: Vec<Value>,
    stack: Vec<Option<Id>>, // None = MARK
    memo: HashMap<u32, Id>,
}

/// Largest number of values a pickle may create (guards against malformed input).
const MAX_VALUES: usize = 10_000_000;

impl<'a> Parser<'a> {
    fn err(&self, msg: impl std::fmt::Display) -> String {
        format!("pickle byte {}: {msg}", self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.data.len() - self.pos < n {
            return Err(self.err("unexpected end of data"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| self.err("unterminated line"))?;
        let s = std::str::from_utf8(&rest[..end]).map_err(|_| self.err("line is not UTF-8"))?.to_string();
        self.pos += end + 1;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> Result<String, String> {
        let b = self.take(n)?;
        std::str::from_utf8(b).map(str::to_string).map_err(|_| self.err("string is not UTF-8"))
    }

    fn alloc(&mut self, v: Value) -> Result<Id, String> {
        if self.arena.len() >= MAX_VALUES {
            return Err(self.err("too many values"));
        }
        self.arena.push(v);
        Ok(self.arena.len() - 1)
    }

    fn push(&mut self, v: Value) -> Result<(), String> {
        let id = self.alloc(v)?;
        self.stack.push(Some(id));
        Ok(())
    }

    fn pop(&mut self) -> Result<Id, String> {
        match self.stack.pop() {
            Some(Some(id)) => Ok(id),
            Some(None) => Err(self.err("unexpected MARK")),
            None => Err(self.err("stack underflow")),
        }
    }

    fn top(&self) -> Result<Id, String> {
        match self.stack.last() {
            Some(Some(id)) => Ok(*id),
            _ => Err(self.err("expected a value on the stack")),
        }
    }

    /// Pops everything down to the last MARK (the MARK too).
    fn pop_mark(&mut self) -> Result<Vec<Id>, String> {
        let m = self.stack.iter().rposition(Option::is_none).ok_or_else(|| self.err("no MARK"))?;
        let items = self.stack.split_off(m + 1).into_iter().flatten().collect();
        self.stack.pop();
        Ok(items)
    }

    fn tuple_items(&self, id: Id) -> Result<Vec<Id>, String> {
        match &self.arena[id] {
            Value::Tuple(v) | Value::List(v) => Ok(v.clone()),
            other => Err(self.err(format!("expected a tuple, got {other:?}"))),
        }
    }

    fn int(&self, id: Id) -> Result<i64, String> {
        match self.arena[id] {
            Value::Int(i) => Ok(i),
            Value::Bool(b) => Ok(b as i64),
            ref other => Err(self.err(format!("expected an int, got {other:?}"))),
        }
    }

    fn usize(&self, id: Id) -> Result<usize, String> {
        usize::try_from(self.int(id)?).map_err(|_| self.err("negative size"))
    }

    fn string(&self, id: Id) -> Result<String, String> {
        match &self.arena[id] {
            Value::Str(s) => Ok(s.clone()),
            other => Err(self.err(format!("expected a string, got {other:?}"))),
        }
    }

    fn memo_get(&self, key: u32) -> Result<Id, String> {
        self.memo.get(&key).copied().ok_or_else(|| self.err(format!("memo key {key} not set")))
    }

    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`.
    fn rebuild_tensor(&self, args: Id) -> Result<Value, String> {
        let a = self.tuple_items(args)?;
        if a.len() < 4 {
            return Err(self.err("_rebuild_tensor_v2 with fewer than 4 arguments"));
        }
        let pid = match &self.arena[a[0]] {
            Value::Persistent(p) => *p,
            other => Err(self.err(format!("tensor storage is not a persistent id: {other:?}")))?,
        };
        // ('storage', torch.FloatStorage, key, location, numel)
        let s = self.tuple_items(pid)?;
        if s.len() < 3 || self.string(s[0])? != "storage" {
            return Err(self.err("persistent id is not a ('storage', …) tuple"));
        }
        let storage_type = match &self.arena[s[1]] {
            Value::Global(g) => g.rsplit('.').next().unwrap_or(g).to_string(),
            other => Err(self.err(format!("storage type is not a class: {other:?}")))?,
        };
        let storage = self.string(s[2])?;
        let offset = self.usize(a[1])?;
        let shape = self.tuple_items(a[2])?.iter().map(|&i| self.usize(i)).collect::<Result<Vec<_>, _>>()?;
        let stride = self.tuple_items(a[3])?.iter().map(|&i| self.usize(i)).collect::<Result<Vec<_>, _>>()?;
        if shape.len() != stride.len() {
            return Err(self.err("tensor shape and stride differ in length"));
        }
        Ok(Value::Tensor(TensorMeta { storage, storage_type, offset, shape, stride }))
    }

    fn run(&mut self) -> Result<Id, String> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(self.err(format!("unsupported pickle protocol {proto}")));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(None),
                b')' => self.push(Value::Tuple(vec![]))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items))?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
                    items.reverse();
                    self.push(Value::Tuple(items))?;
                }
                b']' => self.push(Value::List(vec![]))?,
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    match &mut self.arena[l] {
                        Value::List(items) => items.push(v),
                        _ => return Err(self.err("APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let vs = self.pop_mark()?;
                    let l = self.top()?;
                    match &mut self.arena[l] {
                        Value::List(items) => items.extend(vs),
                        _ => return Err(self.err("APPENDS to a non-list")),
                    }
                }
                b'}' => self.push(Value::Dict(vec![]))?,
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    match &mut self.arena[d] {
                        Value::Dict(items) => items.push((k, v)),
                        _ => return Err(self.err("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let kvs = self.pop_mark()?;
                    if kvs.len() % 2 != 0 {
                        return Err(self.err("SETITEMS with an odd number of items"));
                    }
                    let d = self.top()?;
                    match &mut self.arena[d] {
                        Value::Dict(items) => items.extend(kvs.chunks(2).map(|c| (c[0], c[1]))),
                        _ => return Err(self.err("SETITEMS on a non-dict")),
                    }
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v as i64))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64))?;
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err(self.err("LONG1 wider than 64 bits"));
                    }
                    let b = self.take(n)?;
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
                    buf[..n].copy_from_slice(b);
                    self.push(Value::Int(i64::from_le_bytes(buf)))?;
                }
                b'G' => {
                    self.take(8)?;
                    self.push(Value::Float)?;
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.text(n)?;
                    self.push(Value::Str(s))?;
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.text(n)?;
                    self.push(Value::Str(s))?;
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    self.take(n)?;
                    self.push(Value::Bytes)?;
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    self.take(n)?;
                    self.push(Value::Bytes)?;
                }
                b'B' | b'T' => {
                    let n = self.u32()? as usize;
                    self.take(n)?;
                    self.push(Value::Bytes)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(format!("{module}.{name}")))?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let g = format!("{}.{}", self.string(module)?, self.string(name)?);
                    self.push(Value::Global(g))?;
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    let id = self.top()?;
                    self.memo.insert(k, id);
                }
                b'r' => {
                    let k = self.u32()?;
                    let id = self.top()?;
                    self.memo.insert(k, id);
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    let id = self.top()?;
                    self.memo.insert(k, id);
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    let id = self.memo_get(k)?;
                    self.stack.push(Some(id));
                }
                b'j' => {
                    let k = self.u32()?;
                    let id = self.memo_get(k)?;
                    self.stack.push(Some(id));
                }
                b'0' => {
                    self.stack.pop().ok_or_else(|| self.err("POP on an empty stack"))?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(Some(id));
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Value::Persistent(pid))?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let name = match &self.arena[f] {
                        Value::Global(g) => g.clone(),
                        other => return Err(self.err(format!("REDUCE on a non-callable {other:?}"))),
                    };
                    // TorchScript wraps typed lists (`List[int]` …) and tagged values in
                    // `torch.jit._pickle.build_intlist([…])`, `restore_type_tag(value, type)`:
                    // the value is the first argument.
                    if name.starts_with("torch.jit._pickle.build_") || name == "torch.jit._pickle.restore_type_tag" {
                        let first = *self
                            .tuple_items(args)?
                            .first()
                            .ok_or_else(|| self.err(format!("{name} without arguments")))?;
                        self.stack.push(Some(first));
                        continue;
                    }
                    let v = match name.as_str() {
                        "torch._utils._rebuild_tensor_v2" => self.rebuild_tensor(args)?,
                        "collections.OrderedDict" => Value::Dict(vec![]),
                        _ => Value::Object { class: name, state: None },
                    };
                    self.push(v)?;
                }
                0x81 => {
                    let _args = self.pop()?;
                    let cls = self.pop()?;
                    let class = match &self.arena[cls] {
                        Value::Global(g) => g.clone(),
                        other => return Err(self.err(format!("NEWOBJ on a non-class {other:?}"))),
                    };
                    self.push(Value::Object { class, state: None })?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    match &mut self.arena[obj] {
                        Value::Object { state: s, .. } => *s = Some(state),
                        _ => return Err(self.err("BUILD on a non-object")),
                    }
                }
                other => return Err(self.err(format!("unsupported pickle opcode 0x{other:02x}"))),
            }
        }
    }

    /// Flattens the object tree under `id` into `out`, with attribute paths below `prefix`.
    fn flatten(&self, id: Id, prefix: &str, out: &mut ScriptModule, depth: usize) -> Result<(), String> {
        if depth > 64 {
            return Err("module tree nested more than 64 levels".into());
        }
        let (class, state) = match &self.arena[id] {
            Value::Object { class, state } => (class, state),
            other => return Err(format!("`{prefix}` is not a module object: {other:?}")),
        };
        out.classes.insert(prefix.to_string(), class.clone());
        let Some(state) = state else { return Ok(()) };
        let Value::Dict(items) = &self.arena[*state] else {
            return Err(format!("state of `{prefix}` is not a dict"));
        };
        for &(k, v) in items {
            let key = self.string(k)?;
            let path = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
            match &self.arena[v] {
                Value::Object { .. } => self.flatten(v, &path, out, depth + 1)?,
                Value::Tensor(t) => {
                    out.tensors.insert(path, t.clone());
                }
                Value::Int(i) => {
                    out.ints.insert(path, vec![*i]);
                }
                Value::Tuple(xs) | Value::List(xs) if xs.iter().all(|&x| matches!(self.arena[x], Value::Int(_))) => {
                    out.ints.insert(path, xs.iter().map(|&x| self.int(x)).collect::<Result<_, _>>()?);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Parses a TorchScript `data.pkl` and flattens its module tree.
pub(crate) fn parse_script_module(data: &[u8]) -> Result<ScriptModule, String> {
    let mut p = Parser { data, pos: 0, arena: Vec::new(), stack: Vec::new(), memo: HashMap::new() };
    let root = p.run()?;
    let mut out = ScriptModule::default();
    p.flatten(root, "", &mut out, 0)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written pickle of `Mod(training=True, conv=Layer(weight=<tensor [2, 3] in
    /// storage "0">, stride=2, padding=build_intlist([0, 3])))`, in the form TorchScript
    /// writes it.
    fn sample() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        let global = |p: &mut Vec<u8>, m: &str, n: &str| {
            p.push(b'c');
            p.extend(m.as_bytes());
            p.push(b'\n');
            p.extend(n.as_bytes());
            p.push(b'\n');
        };
        let s = |p: &mut Vec<u8>, x: &str| {
            p.push(b'X');
            p.extend((x.len() as u32).to_le_bytes());
            p.extend(x.as_bytes());
        };
        global(&mut p, "__torch__.m", "Mod");
        p.extend([b')', 0x81, b'}', b'(']);
        s(&mut p, "training");
        p.push(0x88);
        s(&mut p, "conv");
        global(&mut p, "__torch__.m", "Layer");
        p.extend([b')', 0x81, b'}', b'(']);
        s(&mut p, "weight");
        global(&mut p, "torch._utils", "_rebuild_tensor_v2");
        p.extend([b'(', b'(']);
        s(&mut p, "storage");
        global(&mut p, "torch", "FloatStorage");
        s(&mut p, "0");
        s(&mut p, "cpu");
        p.extend([b'K', 6, b't', b'Q', b'K', 0, b'K', 2, b'K', 3, 0x86, b'K', 3, b'K', 1, 0x86, 0x89]);
        global(&mut p, "collections", "OrderedDict");
        p.extend([b')', b'R', b't', b'R', b'q', 7]);
        s(&mut p, "stride");
        p.extend([b'K', 2]);
        s(&mut p, "padding");
        global(&mut p, "torch.jit._pickle", "build_intlist");
        p.extend([b']', b'(', b'K', 0, b'K', 3, b'e', 0x85, b'R']);
        p.extend([b'u', b'b', b'u', b'b', b'.']);
        p
    }

    #[test]
    fn parses_a_torchscript_style_pickle() {
        let m = parse_script_module(&sample()).unwrap();
        assert_eq!(m.classes[""], "__torch__.m.Mod");
        assert_eq!(m.classes["conv"], "__torch__.m.Layer");
        let t = &m.tensors["conv.weight"];
        assert_eq!(t.storage, "0");
        assert_eq!(t.storage_type, "FloatStorage");
        assert_eq!(t.shape, vec![2, 3]);
        assert_eq!(t.stride, vec![3, 1]);
        assert_eq!(m.ints["conv.stride"], vec![2]);
        assert_eq!(m.ints["conv.padding"], vec![0, 3]);
        assert!(!m.ints.contains_key("training"));
    }

    #[test]
    fn refuses_truncated_and_unknown_input() {
        let data = sample();
        assert!(parse_script_module(&data[..data.len() - 3]).is_err());
        assert!(parse_script_module(&[0x80, 2, 0xff]).unwrap_err().contains("opcode 0xff"));
        assert!(parse_script_module(&[]).is_err());
    }
}
