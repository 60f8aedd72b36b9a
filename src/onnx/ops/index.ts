// Imports every ONNX op family so that each registers its implementations (registry.ts).
import './elementwise.js';
import './activations.js';
import './shape.js';
import './indexing.js';
import './creation.js';
import './reduce.js';
import './matmul.js';
import './nn.js';
import './normalization.js';
import './losses.js';
import './rnn.js';
import './control-flow.js';
import './sequence.js';
import './quantize.js';
import './signal.js';
import './training.js';
import './text.js';
