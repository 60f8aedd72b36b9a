// quant/: quantization (per-tensor / per-channel / group, int8, int4) and mixed precision
// (autocast, loss scaling). Exported from the package root as `quant`.
export { autocast, enterAutocast, isAutocastEnabled, autocastDType, autocastCacheSize, type AutocastOptions, type AutocastRegion, type AutocastDType } from './autocast.js';
export { AUTOCAST_RULES, autocastPolicyOf, type AutocastPolicy, type AutocastRule } from './autocast-policy.js';
export { GradScaler, type GradScalerOptions, type GradScalerState, type ScalableOptimizer } from './grad-scaler.js';
export { MasterWeightOptimizer, type MasterWeightOptions } from './master-weights.js';
// Quantization (int8 / int4; per-tensor, per-channel, group-wise; symmetric or affine): docs/quantization.md.
export { quantize, dequantize, fromCodes, codesOf, type DequantizeOptions } from './quantize.js';
export { QuantizedTensor } from './quantized-tensor.js';
export { quantRange, type QuantBits, type QuantScheme, type Calibration, type QuantizeOptions, type QuantSpec, type QuantSpecJson } from './scheme.js';
export { packInt4, unpackInt4, packedRowBytes } from './int4.js';
export { roundHalfEven } from './rounding.js';
export { QuantizedLinear, quantizedLinear, type LinearQuantizeOptions, type LinearLike, type QuantizedLinearCallOptions } from './quantized-linear.js';
export { dynamicInt8Linear, dynamicInt8Reference, quantizeRowsInt8, int8MatmulInt32, scaleInt32, checkDynamicInt8Weight, DYNAMIC_INT8_MAX_K, type ActivationQuant } from './dynamic-int8.js';
export { quantizeModel, modelBytes, formatQuantizeReport, type QuantizeModelOptions, type QuantizeModelReport, type QuantizedLayerReport, type QuantizeModelResult } from './quantize-model.js';
export { quantizationConfig, prepareQuantized, serializeQuantized, parseQuantizedInto, saveQuantized, loadQuantized, QUANTIZATION_METADATA_KEY, type QuantizationConfig } from './checkpoint.js';
// GPTQ (error-compensating rounding from calibration inputs): docs/quantization.md#gptq.
export { gptqQuantize, relativeOutputErrors, type GptqOptions, type GptqResult, type GptqCalibration } from './gptq.js';
export { gptqQuantizeModel, type GptqModelOptions, type ModelCalibration } from './gptq-model.js';
export { Hessian, quadraticForm } from './hessian.js';
export { upperCholeskyOfInverse, type InverseCholesky } from './cholesky.js';
// AWQ (activation-aware per-input-channel scales, then rounding): docs/quantization.md#awq.
export { awqQuantize, scalesOf as awqScales, type AwqOptions, type AwqResult, type AwqCalibration } from './awq.js';
export { awqQuantizeModel, type AwqModelOptions } from './awq-model.js';
export { ActivationStats } from './activation-stats.js';
