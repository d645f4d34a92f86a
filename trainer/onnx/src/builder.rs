//! [`GraphBuilder`]: writes an ONNX graph node by node, checking names as it goes.

use std::collections::HashSet;

use crate::error::{Error, ErrorKind};
use crate::proto::{
    AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    tensor_shape_proto, type_proto,
};

/// The default operator set version (`ai.onnx` opset 17).
pub const OPSET_VERSION: i64 = 17;

/// The IR version written for [`OPSET_VERSION`] (IR 8 is the first to cover opset 17).
pub const IR_VERSION: i64 = 8;

/// One dimension of a declared input or output shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named symbol such as `"batch"` or `"time"`; the size is chosen per run.
    Symbol(String),
}

impl Dim {
    /// A named symbolic dimension.
    pub fn symbol(name: &str) -> Self {
        Dim::Symbol(name.to_owned())
    }
}

impl From<usize> for Dim {
    fn from(size: usize) -> Self {
        Dim::Fixed(size)
    }
}

impl From<&str> for Dim {
    fn from(name: &str) -> Self {
        Dim::Symbol(name.to_owned())
    }
}

/// An attribute value, converted into an [`AttributeProto`] by [`attr`].
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// `INT`.
    Int(i64),
    /// `FLOAT`.
    Float(f32),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOATS`.
    Floats(Vec<f32>),
    /// `STRING`.
    String(String),
    /// `STRINGS`.
    Strings(Vec<String>),
    /// `TENSOR`.
    Tensor(TensorProto),
    /// `GRAPH` (a subgraph, e.g. a `Loop` body).
    Graph(GraphProto),
}

impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}
impl From<f32> for AttrValue {
    fn from(v: f32) -> Self {
        AttrValue::Float(v)
    }
}
impl From<Vec<i64>> for AttrValue {
    fn from(v: Vec<i64>) -> Self {
        AttrValue::Ints(v)
    }
}
impl From<&[i64]> for AttrValue {
    fn from(v: &[i64]) -> Self {
        AttrValue::Ints(v.to_vec())
    }
}
impl<const N: usize> From<[i64; N]> for AttrValue {
    fn from(v: [i64; N]) -> Self {
        AttrValue::Ints(v.to_vec())
    }
}
impl From<Vec<f32>> for AttrValue {
    fn from(v: Vec<f32>) -> Self {
        AttrValue::Floats(v)
    }
}
impl<const N: usize> From<[f32; N]> for AttrValue {
    fn from(v: [f32; N]) -> Self {
        AttrValue::Floats(v.to_vec())
    }
}
impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        AttrValue::String(v.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        AttrValue::String(v)
    }
}
impl From<TensorProto> for AttrValue {
    fn from(v: TensorProto) -> Self {
        AttrValue::Tensor(v)
    }
}
impl From<GraphProto> for AttrValue {
    fn from(v: GraphProto) -> Self {
        AttrValue::Graph(v)
    }
}

/// Builds a named attribute: `attr("axis", 1_i64)`, `attr("perm", [0_i64, 2, 1])`,
/// `attr("direction", "forward")`.
pub fn attr(name: &str, value: impl Into<AttrValue>) -> AttributeProto {
    let mut a = AttributeProto { name: name.to_owned(), ..Default::default() };
    let ty = match value.into() {
        AttrValue::Int(v) => {
            a.i = Some(v);
            AttributeType::Int
        }
        AttrValue::Float(v) => {
            a.f = Some(v);
            AttributeType::Float
        }
        AttrValue::Ints(v) => {
            a.ints = v;
            AttributeType::Ints
        }
        AttrValue::Floats(v) => {
            a.floats = v;
            AttributeType::Floats
        }
        AttrValue::String(v) => {
            a.s = Some(v.into_bytes());
            AttributeType::String
        }
        AttrValue::Strings(v) => {
            a.strings = v.into_iter().map(String::into_bytes).collect();
            AttributeType::Strings
        }
        AttrValue::Tensor(v) => {
            a.t = Some(v);
            AttributeType::Tensor
        }
        AttrValue::Graph(v) => {
            a.g = Some(v);
            AttributeType::Graph
        }
    };
    a.r#type = ty as i32;
    a
}

/// A float32 tensor (data little-endian in `raw_data`). Fails when `data.len()` is not the
/// product of `dims`.
pub fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> Result<TensorProto, Error> {
    check_len(name, dims, data.len())?;
    Ok(TensorProto {
        name: name.to_owned(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    })
}

/// An int64 tensor (data little-endian in `raw_data`). Fails when `data.len()` is not the
/// product of `dims`.
pub fn tensor_i64(name: &str, dims: &[usize], data: &[i64]) -> Result<TensorProto, Error> {
    check_len(name, dims, data.len())?;
    Ok(TensorProto {
        name: name.to_owned(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    })
}

fn check_len(name: &str, dims: &[usize], len: usize) -> Result<(), Error> {
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if expected != Some(len) {
        return Err(Error::new(
            ErrorKind::TensorSize,
            format!("tensor `{name}`: shape {dims:?} needs {expected:?} elements, got {len}"),
        ));
    }
    Ok(())
}

fn value_info(name: &str, elem: DataType, shape: &[Dim]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
                Dim::Symbol(s) => tensor_shape_proto::dimension::Value::DimParam(s.clone()),
            }),
            denotation: String::new(),
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

/// Writes an ONNX graph: inputs, initializers and nodes in topological order, then outputs.
///
/// Every name is checked when it is used: a node input must already be a graph input, an
/// initializer or an earlier node's output (or `""`, an omitted optional input), and each
/// value is defined once. [`GraphBuilder::op`] names single outputs automatically
/// (`"{op}_{n}"`), so most code only names the graph's inputs, outputs and weights.
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    graph: GraphProto,
    opset: i64,
    producer_name: String,
    producer_version: String,
    doc_string: String,
    metadata: Vec<StringStringEntryProto>,
    defined: HashSet<String>,
    counter: usize,
}

impl GraphBuilder {
    /// Starts an empty graph named `name`, for opset [`OPSET_VERSION`].
    pub fn new(name: &str) -> Self {
        Self {
            graph: GraphProto { name: name.to_owned(), ..Default::default() },
            opset: OPSET_VERSION,
            producer_name: "prosodia".to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            doc_string: String::new(),
            metadata: Vec::new(),
            defined: HashSet::new(),
            counter: 0,
        }
    }

    /// Sets the tool name and version recorded in the file (default `prosodia`, this crate's
    /// version).
    pub fn producer(&mut self, name: &str, version: &str) -> &mut Self {
        self.producer_name = name.to_owned();
        self.producer_version = version.to_owned();
        self
    }

    /// Sets the model's documentation string.
    pub fn doc(&mut self, doc: &str) -> &mut Self {
        self.doc_string = doc.to_owned();
        self
    }

    /// Adds a metadata entry (for example the label order or the feature configuration).
    pub fn metadata(&mut self, key: &str, value: &str) -> &mut Self {
        self.metadata.push(StringStringEntryProto { key: key.to_owned(), value: value.to_owned() });
        self
    }

    fn define(&mut self, name: &str) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::new(ErrorKind::EmptyName, "a value name is empty"));
        }
        if !self.defined.insert(name.to_owned()) {
            return Err(Error::new(
                ErrorKind::DuplicateName,
                format!("value `{name}` is defined twice"),
            ));
        }
        Ok(())
    }

    /// Declares a graph input with element type `elem` and a shape whose dimensions may be
    /// symbolic. Returns its name.
    pub fn input(&mut self, name: &str, elem: DataType, shape: &[Dim]) -> Result<String, Error> {
        self.define(name)?;
        self.graph.input.push(value_info(name, elem, shape));
        Ok(name.to_owned())
    }

    /// Declares `value` (already defined) as a graph output with the given type and shape.
    pub fn output(&mut self, value: &str, elem: DataType, shape: &[Dim]) -> Result<(), Error> {
        self.check_defined(value, "graph output")?;
        if self.graph.output.iter().any(|o| o.name == value) {
            return Err(Error::new(
                ErrorKind::DuplicateName,
                format!("output `{value}` is declared twice"),
            ));
        }
        self.graph.output.push(value_info(value, elem, shape));
        Ok(())
    }

    /// Adds a constant tensor (any type, built with [`tensor_f32`], [`tensor_i64`] or by
    /// hand) under its own name. Returns that name.
    pub fn initializer(&mut self, tensor: TensorProto) -> Result<String, Error> {
        self.define(&tensor.name)?;
        let name = tensor.name.clone();
        self.graph.initializer.push(tensor);
        Ok(name)
    }

    /// Adds a float32 initializer. Returns its name.
    pub fn init_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> Result<String, Error> {
        self.initializer(tensor_f32(name, dims, data)?)
    }

    /// Adds an int64 initializer. Returns its name.
    pub fn init_i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> Result<String, Error> {
        self.initializer(tensor_i64(name, dims, data)?)
    }

    /// A fresh value name `"{stem}_{n}"` that is not yet defined.
    pub fn fresh_name(&mut self, stem: &str) -> String {
        loop {
            self.counter += 1;
            let name = format!("{stem}_{}", self.counter);
            if !self.defined.contains(&name) {
                return name;
            }
        }
    }

    fn check_defined(&self, name: &str, what: &str) -> Result<(), Error> {
        if self.defined.contains(name) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::UndefinedValue,
                format!("{what} `{name}` is not defined yet"),
            ))
        }
    }

    /// Adds a node with explicit output names (`""` omits an optional output).
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> Result<(), Error> {
        for input in inputs.iter().filter(|i| !i.is_empty()) {
            self.check_defined(input, &format!("input of {op_type}"))?;
        }
        if outputs.iter().all(|o| o.is_empty()) {
            return Err(Error::new(ErrorKind::EmptyName, format!("{op_type} node has no output")));
        }
        for output in outputs.iter().filter(|o| !o.is_empty()) {
            self.define(output)?;
        }
        let name = format!("{op_type}_node_{}", self.graph.node.len());
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            name,
            op_type: op_type.to_owned(),
            attribute: attributes,
            ..Default::default()
        });
        Ok(())
    }

    /// Adds a single-output node and returns the name given to its output.
    pub fn op(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> Result<String, Error> {
        let out = self.fresh_name(op_type);
        self.node(op_type, inputs, &[&out], attributes)?;
        Ok(out)
    }

    /// Adds a node with `n_outputs` outputs named automatically; returns their names.
    pub fn op_multi(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        n_outputs: usize,
        attributes: Vec<AttributeProto>,
    ) -> Result<Vec<String>, Error> {
        let outs: Vec<String> = (0..n_outputs).map(|_| self.fresh_name(op_type)).collect();
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        self.node(op_type, inputs, &refs, attributes)?;
        Ok(outs)
    }

    /// Adds a constant (an int64 initializer with a fresh name), handy for `axes`, `shape`
    /// and index inputs. Returns its name.
    pub fn const_i64(&mut self, dims: &[usize], data: &[i64]) -> Result<String, Error> {
        let name = self.fresh_name("const_i64");
        self.init_i64(&name, dims, data)
    }

    /// Adds a float32 constant with a fresh name. Returns its name.
    pub fn const_f32(&mut self, dims: &[usize], data: &[f32]) -> Result<String, Error> {
        let name = self.fresh_name("const_f32");
        self.init_f32(&name, dims, data)
    }

    /// Finishes the model. Fails when the graph has no input or no output.
    pub fn build(&self) -> Result<ModelProto, Error> {
        if self.graph.input.is_empty() {
            return Err(Error::new(ErrorKind::Incomplete, "the graph has no input"));
        }
        if self.graph.output.is_empty() {
            return Err(Error::new(ErrorKind::Incomplete, "the graph has no output"));
        }
        Ok(ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: self.opset }],
            producer_name: self.producer_name.clone(),
            producer_version: self.producer_version.clone(),
            domain: String::new(),
            model_version: 1,
            doc_string: self.doc_string.clone(),
            graph: Some(self.graph.clone()),
            metadata_props: self.metadata.clone(),
        })
    }

    /// Finishes the model and serialises it to the bytes of a `.onnx` file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        Ok(self.build()?.to_bytes())
    }
}
