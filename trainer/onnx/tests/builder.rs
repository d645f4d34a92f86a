//! The graph builder's checks and the wire format of what it writes.

use anyhow::Result;
use prosodia_onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use prosodia_onnx::proto::{AttributeType, type_proto};
use prosodia_onnx::{
    Arch, DataType, Dim, ErrorKind, GraphBuilder, ModelProto, OPSET_VERSION, TestModelConfig, attr,
    tensor_f32, test_classifier,
};

fn two_inputs() -> Result<GraphBuilder> {
    let mut b = GraphBuilder::new("g");
    b.input("x", DataType::Float, &[Dim::symbol("batch"), Dim::Fixed(4)])?;
    b.init_f32("w", &[4, 2], &[0.5; 8])?;
    Ok(b)
}

#[test]
fn undefined_input_is_rejected() -> Result<()> {
    let mut b = two_inputs()?;
    let err = b.op("MatMul", &["x", "nope"], vec![]).err().map(|e| (e.kind(), e.to_string()));
    let (kind, msg) = err.ok_or_else(|| anyhow::anyhow!("undefined input accepted"))?;
    assert_eq!(kind, ErrorKind::UndefinedValue);
    assert!(msg.contains("`nope`"), "{msg}");
    Ok(())
}

#[test]
fn duplicate_names_are_rejected() -> Result<()> {
    let mut b = two_inputs()?;
    assert_eq!(
        b.init_f32("x", &[1], &[1.0]).err().map(|e| e.kind()),
        Some(ErrorKind::DuplicateName)
    );
    b.node("MatMul", &["x", "w"], &["y"], vec![])?;
    assert_eq!(
        b.node("Relu", &["y"], &["y"], vec![]).err().map(|e| e.kind()),
        Some(ErrorKind::DuplicateName)
    );
    Ok(())
}

#[test]
fn tensor_size_must_match_shape() {
    assert_eq!(
        tensor_f32("t", &[2, 3], &[0.0; 5]).err().map(|e| e.kind()),
        Some(ErrorKind::TensorSize)
    );
    assert!(tensor_f32("t", &[2, 3], &[0.0; 6]).is_ok());
    assert!(tensor_f32("scalar", &[], &[1.0]).is_ok());
}

#[test]
fn graph_needs_outputs() -> Result<()> {
    let b = two_inputs()?;
    assert_eq!(b.build().err().map(|e| e.kind()), Some(ErrorKind::Incomplete));
    let mut b = two_inputs()?;
    assert_eq!(
        b.output("y", DataType::Float, &[]).err().map(|e| e.kind()),
        Some(ErrorKind::UndefinedValue)
    );
    Ok(())
}

#[test]
fn round_trip_keeps_everything() -> Result<()> {
    let mut b = two_inputs()?;
    let y = b.op("MatMul", &["x", "w"], vec![])?;
    b.node("ReduceSum", &[&y], &["out"], vec![attr("keepdims", 0_i64)])?;
    b.output("out", DataType::Float, &[Dim::symbol("batch")])?;
    b.metadata("labels", "angry,disgust,fear,happy,neutral,sad");
    let model = b.build()?;
    let back = ModelProto::from_bytes(&model.to_bytes())?;
    assert_eq!(back, model);
    assert_eq!(back.opset_import[0].version, OPSET_VERSION);
    assert_eq!(back.metadata_props[0].value, "angry,disgust,fear,happy,neutral,sad");
    let graph = back.graph.ok_or_else(|| anyhow::anyhow!("no graph"))?;
    // A zero-valued attribute is still present (the ONNX checker requires exactly one value).
    let keepdims = &graph.node[1].attribute[0];
    assert_eq!((keepdims.r#type, keepdims.i), (AttributeType::Int as i32, Some(0)));
    // Symbolic and fixed dimensions.
    let Some(type_proto::Value::TensorType(t)) =
        graph.input[0].r#type.as_ref().and_then(|t| t.value.clone())
    else {
        anyhow::bail!("input has no tensor type");
    };
    let dims: Vec<_> =
        t.shape.map(|s| s.dim.into_iter().filter_map(|d| d.value).collect()).unwrap_or_default();
    assert_eq!(dims, vec![DimValue::DimParam("batch".into()), DimValue::DimValue(4)]);
    // Weights are little-endian raw data.
    assert_eq!(graph.initializer[0].raw_data, 0.5_f32.to_le_bytes().repeat(8));
    Ok(())
}

#[test]
fn test_classifiers_are_deterministic_and_seeded() -> Result<()> {
    for arch in [Arch::Conv, Arch::ConvLstm] {
        let config = TestModelConfig { arch, ..TestModelConfig::default() };
        let a = test_classifier(&config)?;
        assert_eq!(a, test_classifier(&config)?);
        assert_ne!(a, test_classifier(&TestModelConfig { seed: 8, ..config })?);
        let model = ModelProto::from_bytes(&a)?;
        let graph = model.graph.ok_or_else(|| anyhow::anyhow!("no graph"))?;
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert!(ops.contains(&"Conv") && ops.contains(&"Softmax"), "{ops:?}");
        assert_eq!(ops.contains(&"LSTM"), arch == Arch::ConvLstm, "{ops:?}");
        let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(inputs, ["features", "lengths"]);
        assert_eq!(graph.output[0].name, "probabilities");
    }
    Ok(())
}

#[test]
fn test_classifier_rejects_bad_sizes() {
    for config in [
        TestModelConfig { features: 0, ..TestModelConfig::default() },
        TestModelConfig { kernel: 4, ..TestModelConfig::default() },
        TestModelConfig { classes: 0, ..TestModelConfig::default() },
    ] {
        assert_eq!(
            test_classifier(&config).err().map(|e| e.kind()),
            Some(ErrorKind::InvalidConfig)
        );
    }
}
