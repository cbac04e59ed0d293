//! `.onnx`: the eval-mode network as an ONNX graph (opset 17, weights embedded): input
//! `images` `[batch, 3, H, W]` float32, ImageNet-normalised RGB as Torchreid feeds it; output
//! `features` `[batch, D]`, the vector `extract` writes. The batch dimension is dynamic.
//!
//! BatchNorm is folded into the convolution or linear layer before it (exact up to rounding,
//! as the inference engine runs it and as TensorRT would fold it anyway); instance norm stays
//! one `InstanceNormalization` node and ReLU6 one `Clip` node, the forms deployment tools
//! recognise.

mod graph;
mod proto;

use std::path::Path;

use prost::Message;

use super::{ExportError, ExportSettings};
use crate::backend::Precision;
use crate::io::write_atomic;
use crate::models::Model;
use crate::models::checkpoint_writer::WriteError;
use graph::GraphRecorder;
use proto::{
    Dimension, DimensionValue, FLOAT, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};

/// The ONNX operator set the graph is written for.
const OPSET: i64 = 17;
/// The IR version that goes with opset 17.
const IR_VERSION: i64 = 8;
/// The graph's input and output.
const INPUT: &str = "images";
const OUTPUT: &str = "features";

/// Writes `model`'s eval-mode graph to `path` for the settings' input size.
pub fn write(model: &Model, path: &Path, settings: &ExportSettings) -> Result<(), ExportError> {
    if settings.precision != Precision::F32 {
        return Err(ExportError::Unsupported(
            "an ONNX export stores float32 weights (deployment tools convert to float16 themselves); --precision f16 applies to .pth and .safetensors".into(),
        ));
    }
    let (height, width) = (settings.input.height, settings.input.width);
    model.architecture().check_input(height, width)?;
    let mut recorder = GraphRecorder::default();
    let features = model.flow(&mut recorder, INPUT.to_string());
    if let Some(error) = recorder.error {
        return Err(ExportError::Encode(error));
    }
    recorder.nodes.push(NodeProto {
        input: vec![features],
        output: vec![OUTPUT.into()],
        name: "output".into(),
        op_type: "Identity".into(),
        attribute: Vec::new(),
    });
    let batch = || DimensionValue::Param("batch".into());
    let size = |n: usize| DimensionValue::Value(n as i64);
    let graph = GraphProto {
        node: recorder.nodes,
        name: model.name().to_string(),
        initializer: recorder.initializers,
        input: vec![value_info(
            INPUT,
            vec![
                batch(),
                size(3),
                size(height as usize),
                size(width as usize),
            ],
        )],
        output: vec![value_info(
            OUTPUT,
            vec![batch(), size(model.name().feature_dim())],
        )],
    };
    let onnx = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "reidscope".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "{} re-identification features of ImageNet-normalised RGB images of {height}x{width}",
            model.name()
        ),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    };
    let bytes = onnx.encode_to_vec();
    write_atomic(path, |out| out.write_all(&bytes)).map_err(|source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// A float32 tensor value of `dims`.
fn value_info(name: &str, dims: Vec<DimensionValue>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .into_iter()
                        .map(|value| Dimension { value: Some(value) })
                        .collect(),
                }),
            }),
        }),
    }
}
