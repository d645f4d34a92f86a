//! The subset of the ONNX protobuf schema that Prosodia writes, as `prost` messages.
//!
//! Field names, numbers and types follow `onnx.proto` (IR version 8 and later). `onnx.proto`
//! is a proto2 file: its repeated scalars are unpacked unless marked `[packed = true]`, and the
//! value fields of [`AttributeProto`] have presence (the ONNX checker counts which ones are
//! set), so those are `Option`s here and are written even when zero. Messages and fields that
//! Prosodia never writes (sparse tensors, training info, functions, sequence and map types,
//! external data) are left out; a decoder skips them when reading a file that has them.

use prost::Message as _;

/// A whole model file: the graph, the operator sets it uses and free-form metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The ONNX IR version the file follows (8 for opset 17).
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// The operator sets the graph's nodes refer to.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// The name of the tool that wrote the file.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// The version of the tool that wrote the file.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// A reverse-DNS namespace for the model.
    #[prost(string, tag = "4")]
    pub domain: String,
    /// The model's own version.
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    /// Human-readable documentation.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The computation.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Free-form key/value metadata (labels, feature configuration, training provenance).
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

impl ModelProto {
    /// Serialises the model to the bytes of a `.onnx` file.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Parses the bytes of a `.onnx` file (fields this schema does not know are skipped).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Self::decode(bytes)
    }
}

/// One key/value metadata entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// An operator set a model uses: a domain (`""` is the default ONNX domain) and its version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// The operator set's domain; empty for the default `ai.onnx` domain.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// The operator set's version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// A computation graph: nodes in topological order, constant initializers, inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// The nodes, in topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The graph's name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Constant tensors (weights), referred to by name from node inputs.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Human-readable documentation.
    #[prost(string, tag = "10")]
    pub doc_string: String,
    /// The graph's inputs.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// The graph's outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// Optional type and shape information about intermediate values.
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// One operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Input value names; an empty string marks an omitted optional input.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output value names; an empty string marks an omitted optional output.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// The node's name (for diagnostics).
    #[prost(string, tag = "3")]
    pub name: String,
    /// The operator, e.g. `"Conv"`.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// The operator's domain; empty for the default ONNX domain.
    #[prost(string, tag = "7")]
    pub domain: String,
    /// The operator's attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// Human-readable documentation.
    #[prost(string, tag = "6")]
    pub doc_string: String,
}

/// The type tag of an [`AttributeProto`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AttributeType {
    /// Not set.
    Undefined = 0,
    /// [`AttributeProto::f`].
    Float = 1,
    /// [`AttributeProto::i`].
    Int = 2,
    /// [`AttributeProto::s`].
    String = 3,
    /// [`AttributeProto::t`].
    Tensor = 4,
    /// [`AttributeProto::g`].
    Graph = 5,
    /// [`AttributeProto::floats`].
    Floats = 6,
    /// [`AttributeProto::ints`].
    Ints = 7,
    /// [`AttributeProto::strings`].
    Strings = 8,
    /// [`AttributeProto::tensors`].
    Tensors = 9,
    /// [`AttributeProto::graphs`].
    Graphs = 10,
}

/// A named operator attribute; exactly the field named by `type` is set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// The attribute's name, e.g. `"kernel_shape"`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Which value field is set.
    #[prost(enumeration = "AttributeType", tag = "20")]
    pub r#type: i32,
    /// A float value.
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    /// An integer value.
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    /// A string value (UTF-8 bytes).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    /// A tensor value.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// A graph value (the body of `Loop`, `If`, `Scan`).
    #[prost(message, optional, tag = "6")]
    pub g: Option<GraphProto>,
    /// A list of floats.
    #[prost(float, repeated, packed = "false", tag = "7")]
    pub floats: Vec<f32>,
    /// A list of integers.
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
    /// A list of strings.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
    /// A list of tensors.
    #[prost(message, repeated, tag = "10")]
    pub tensors: Vec<TensorProto>,
    /// A list of graphs.
    #[prost(message, repeated, tag = "11")]
    pub graphs: Vec<GraphProto>,
    /// Human-readable documentation.
    #[prost(string, tag = "13")]
    pub doc_string: String,
}

/// The element type of a tensor (`TensorProto.DataType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataType {
    /// Not set.
    Undefined = 0,
    /// 32-bit float.
    Float = 1,
    /// Unsigned 8-bit integer.
    Uint8 = 2,
    /// Signed 8-bit integer.
    Int8 = 3,
    /// Unsigned 16-bit integer.
    Uint16 = 4,
    /// Signed 16-bit integer.
    Int16 = 5,
    /// Signed 32-bit integer.
    Int32 = 6,
    /// Signed 64-bit integer.
    Int64 = 7,
    /// A string.
    String = 8,
    /// A boolean.
    Bool = 9,
    /// 16-bit IEEE float.
    Float16 = 10,
    /// 64-bit float.
    Double = 11,
    /// Unsigned 32-bit integer.
    Uint32 = 12,
    /// Unsigned 64-bit integer.
    Uint64 = 13,
    /// Two 32-bit floats.
    Complex64 = 14,
    /// Two 64-bit floats.
    Complex128 = 15,
    /// bfloat16.
    Bfloat16 = 16,
}

/// A constant tensor. Prosodia writes its data little-endian in `raw_data`; the typed
/// fields exist so that files written by other tools can be read back.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// The shape.
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// The element type, a [`DataType`].
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Float elements (when `raw_data` is empty).
    #[prost(float, repeated, packed = "true", tag = "4")]
    pub float_data: Vec<f32>,
    /// Int32 (and smaller integer, bool, float16) elements (when `raw_data` is empty).
    #[prost(int32, repeated, packed = "true", tag = "5")]
    pub int32_data: Vec<i32>,
    /// String elements.
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub string_data: Vec<Vec<u8>>,
    /// Int64 elements (when `raw_data` is empty).
    #[prost(int64, repeated, packed = "true", tag = "7")]
    pub int64_data: Vec<i64>,
    /// The tensor's name (the initializer name, for graph initializers).
    #[prost(string, tag = "8")]
    pub name: String,
    /// Human-readable documentation.
    #[prost(string, tag = "12")]
    pub doc_string: String,
    /// The elements as little-endian bytes, row-major.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// Double elements (when `raw_data` is empty).
    #[prost(double, repeated, packed = "true", tag = "10")]
    pub double_data: Vec<f64>,
    /// Uint32 and uint64 elements (when `raw_data` is empty).
    #[prost(uint64, repeated, packed = "true", tag = "11")]
    pub uint64_data: Vec<u64>,
}

/// A named value with its type: a graph input, output or annotated intermediate.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// The value's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value's type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    /// Human-readable documentation.
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// The type of a value; only tensor types are modelled.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// The type itself.
    #[prost(oneof = "type_proto::Value", tags = "1")]
    pub value: Option<type_proto::Value>,
    /// An optional denotation (e.g. `"TENSOR"`).
    #[prost(string, tag = "6")]
    pub denotation: String,
}

/// The nested messages of [`TypeProto`].
pub mod type_proto {
    /// A dense tensor type: element type and (possibly symbolic) shape.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        /// The element type, a [`DataType`](super::DataType).
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        /// The shape; absent for a tensor of unknown rank.
        #[prost(message, optional, tag = "2")]
        pub shape: Option<super::TensorShapeProto>,
    }

    /// The kinds of type a [`TypeProto`](super::TypeProto) can hold (tensor only here).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// A dense tensor.
        #[prost(message, tag = "1")]
        TensorType(Tensor),
    }
}

/// A tensor shape whose dimensions may be numbers or named symbols.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions, outermost first.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

/// The nested messages of [`TensorShapeProto`].
pub mod tensor_shape_proto {
    /// One dimension: a fixed size, a named symbol, or unknown (neither set).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        /// The size or symbol.
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
        /// An optional denotation (e.g. `"DATA_BATCH"`).
        #[prost(string, tag = "3")]
        pub denotation: String,
    }

    /// The nested messages of [`Dimension`].
    pub mod dimension {
        /// A dimension's value.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// A fixed size.
            #[prost(int64, tag = "1")]
            DimValue(i64),
            /// A named symbol, e.g. `"batch"`; equal names mean equal sizes.
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}
