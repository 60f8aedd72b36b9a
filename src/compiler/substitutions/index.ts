// Automatically generated, verified graph substitutions (TASO) and partially equivalent
// transformations with correction kernels (PET). See docs/compiler.md, "Substitutions".
export {
  PATTERN_OPS, canonicalRule, ruleKey, ruleText, evalGraph, patternShapes, isPolynomial,
  type PatternOp, type PatternNode, type PatternGraph, type PatternVar, type Rule, type Dim,
} from './pattern.js';
export {
  generateRules, verifyPair, pruneRules, defaultGeneratorConfig, defaultVocabulary, rng,
  type GeneratorConfig, type GeneratorStats, type GeneratedRules,
} from './generate.js';
export { loadRules, committedRuleSet, encodeRule, decodeRule, ruleSetFile, type RuleSetFile } from './rules.js';
export { findMatches, applyMatch, valuesByOp, rootOp, type Match } from './match.js';
export {
  substitutionSearch, substitutionPass, graphCost, graphHash, DEFAULT_COST_MODEL,
  type CostModel, type SearchOptions, type SearchResult,
} from './search.js';
export { splitConvRows, petConvSplit, convSplitPass, type ConvSplitOptions } from './pet.js';
