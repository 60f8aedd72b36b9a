// Public surface of train: recipes, the training loop with checkpoints and resume, progress reporting.
export { type Recipe, type RecipeOptions, type TrainTask, type StepResult, type EvalResult, type GenerateOptions } from './recipe.js';
export { train, buildTask, readCheckpoint, loadTrainedTask, checkpointPath, CHECKPOINT_FILE, type TrainOptions, type TrainResult } from './trainer.js';
export { createReporter, formatDuration, type Reporter, type EpochRecord, type StepInfo, type ReporterOptions } from './progress.js';
export { recipes } from './recipes/index.js';
