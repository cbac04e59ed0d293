//! Records a network's eval-mode forward pass as ONNX nodes: each [`Flow`] operation becomes
//! one node or a few (BatchNorm is folded into the convolution or linear layer before it, as
//! the inference engine runs it), each weight an initializer.

use crate::models::Activation;
use crate::models::batch_norm::EPSILON;
use crate::models::flow::Flow;
use crate::models::folded;
use crate::models::layers::{Conv, ConvBn, InstanceNorm, Linear};

use super::proto::{
    ATTRIBUTE_FLOAT, ATTRIBUTE_INT, ATTRIBUTE_INTS, AttributeProto, FLOAT, INT64, NodeProto,
    TensorProto,
};

/// Nodes and initializers recorded so far; values are named `v{n}`.
#[derive(Debug, Default)]
pub struct GraphRecorder {
    /// The nodes, in the order the forward pass calls them.
    pub nodes: Vec<NodeProto>,
    /// The weights and constants.
    pub initializers: Vec<TensorProto>,
    /// The first layer whose values could not be read, if any.
    pub error: Option<String>,
    count: usize,
    relu6_bounds: Option<(String, String)>,
}

impl GraphRecorder {
    /// A fresh name with `prefix`.
    fn name(&mut self, prefix: &str) -> String {
        self.count += 1;
        format!("{prefix}{}", self.count)
    }

    /// Adds a node of `op` reading `inputs`; returns its output's name.
    fn node(&mut self, op: &str, inputs: Vec<String>, attribute: Vec<AttributeProto>) -> String {
        let output = self.name("v");
        let name = format!("{op}_{}", self.count);
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![output.clone()],
            name,
            op_type: op.to_string(),
            attribute,
        });
        output
    }

    /// Adds a float32 initializer; returns its name.
    fn weight(&mut self, values: &[f32], dims: &[usize]) -> String {
        let name = self.name("w");
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// Adds an int64 initializer; returns its name.
    fn int64s(&mut self, values: &[i64]) -> String {
        let name = self.name("w");
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: INT64,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// Keeps the first error; later nodes still get names, so recording goes on to the end.
    fn fail(&mut self, what: &str, error: String) {
        self.error.get_or_insert_with(|| format!("{what}: {error}"));
    }

    fn activate(&mut self, x: String, act: Activation) -> String {
        match act {
            Activation::Identity => x,
            Activation::Relu => self.node("Relu", vec![x], Vec::new()),
            Activation::Relu6 => {
                let (low, high) = match &self.relu6_bounds {
                    Some(bounds) => bounds.clone(),
                    None => {
                        let bounds = (self.weight(&[0.0], &[]), self.weight(&[6.0], &[]));
                        self.relu6_bounds = Some(bounds.clone());
                        bounds
                    }
                };
                self.node("Clip", vec![x, low, high], Vec::new())
            }
        }
    }

    /// What `read` gives of a layer's eval-mode form; `None` (and the error kept) when the
    /// network has no such form.
    fn read<L, T>(
        &mut self,
        what: &str,
        layer: Option<&L>,
        read: impl FnOnce(&L) -> T,
    ) -> Option<T> {
        if layer.is_none() {
            self.fail(what, "the network was not built for inference".to_string());
        }
        layer.map(read)
    }

    fn conv_node(&mut self, layer: Option<&folded::Conv>, x: String) -> String {
        let Some(parts) = self.read("a convolution", layer, folded::Conv::parts) else {
            return x;
        };
        let [_, _, kh, kw] = parts.weight_shape;
        let options = &parts.options;
        let mut inputs = vec![x, self.weight(&parts.weight, &parts.weight_shape)];
        if let Some(bias) = &parts.bias {
            inputs.push(self.weight(bias, &[bias.len()]));
        }
        let [(top, bottom), (left, right)] = options.padding;
        let attributes = vec![
            ints("kernel_shape", &[kh, kw]),
            ints("strides", &options.stride),
            ints("pads", &[top, left, bottom, right]),
            ints("dilations", &options.dilation),
            int("group", options.groups),
        ];
        self.node("Conv", inputs, attributes)
    }

    fn gemm(&mut self, layer: &Linear, x: String) -> String {
        let Some(parts) = self.read("a linear layer", layer.folded(), folded::Linear::parts) else {
            return x;
        };
        let inputs = vec![
            x,
            self.weight(&parts.weight, &parts.weight_shape),
            self.weight(&parts.bias, &[parts.bias.len()]),
        ];
        self.node("Gemm", inputs, Vec::new())
    }
}

fn int(name: &str, value: usize) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: value as i64,
        r#type: ATTRIBUTE_INT,
        ..AttributeProto::default()
    }
}

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: values.iter().map(|&v| v as i64).collect(),
        r#type: ATTRIBUTE_INTS,
        ..AttributeProto::default()
    }
}

impl Flow for GraphRecorder {
    type Map = String;
    type Vector = String;

    fn conv_bn(&mut self, layer: &ConvBn, x: String, act: Activation) -> String {
        let y = self.conv_node(layer.folded(), x);
        self.activate(y, act)
    }

    fn conv_bn_add(
        &mut self,
        layer: &ConvBn,
        x: String,
        residual: String,
        act: Activation,
    ) -> String {
        let y = self.conv_node(layer.folded(), x);
        let sum = self.add(y, residual);
        self.activate(sum, act)
    }

    fn conv(&mut self, layer: &Conv, x: String) -> String {
        self.conv_node(layer.folded(), x)
    }

    fn instance_norm(&mut self, layer: &InstanceNorm, x: String, act: Activation) -> String {
        let affine = |norm: &folded::InstanceNorm| {
            let (gamma, beta) = norm.affine();
            (gamma.to_vec(), beta.to_vec())
        };
        let Some((gamma, beta)) = self.read("an instance norm", layer.folded(), affine) else {
            return x;
        };
        let inputs = vec![
            x,
            self.weight(&gamma, &[gamma.len()]),
            self.weight(&beta, &[beta.len()]),
        ];
        let epsilon = AttributeProto {
            name: "epsilon".into(),
            f: EPSILON as f32,
            r#type: ATTRIBUTE_FLOAT,
            ..AttributeProto::default()
        };
        let y = self.node("InstanceNormalization", inputs, vec![epsilon]);
        self.activate(y, act)
    }

    fn linear(&mut self, layer: &Linear, x: String) -> String {
        self.gemm(layer, x)
    }

    fn linear_relu(&mut self, layer: &Linear, x: String) -> String {
        let y = self.gemm(layer, x);
        self.activate(y, Activation::Relu)
    }

    fn add(&mut self, a: String, b: String) -> String {
        self.node("Add", vec![a, b], Vec::new())
    }

    fn relu(&mut self, x: String) -> String {
        self.activate(x, Activation::Relu)
    }

    fn stem_max_pool(&mut self, x: String) -> String {
        let attributes = vec![
            ints("kernel_shape", &[3, 3]),
            ints("strides", &[2, 2]),
            ints("pads", &[1, 1, 1, 1]),
        ];
        self.node("MaxPool", vec![x], attributes)
    }

    fn avg_pool_2x2(&mut self, x: String) -> String {
        let attributes = vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])];
        self.node("AveragePool", vec![x], attributes)
    }

    fn global_avg_pool(&mut self, x: String) -> String {
        let pooled = self.node("GlobalAveragePool", vec![x], Vec::new());
        self.node("Flatten", vec![pooled], vec![int("axis", 1)])
    }

    fn gate(&mut self, x: String, logits: String) -> String {
        let gates = self.node("Sigmoid", vec![logits], Vec::new());
        let axes = self.int64s(&[2, 3]);
        let gates = self.node("Unsqueeze", vec![gates, axes], Vec::new());
        self.node("Mul", vec![x, gates], Vec::new())
    }
}
