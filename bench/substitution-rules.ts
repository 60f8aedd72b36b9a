// Regenerates the committed substitution rule set (src/compiler/substitutions/rules.json) and writes
// the generator's statistics to bench/results/substitution-rules.json.
//   npx tsx bench/substitution-rules.ts
import { writeFileSync } from 'node:fs';
import { defaultGeneratorConfig, generateRules } from '../src/compiler/substitutions/generate.js';
import { ruleSetFile } from '../src/compiler/substitutions/rules.js';

const config = defaultGeneratorConfig();
const { rules, stats } = generateRules(config);
const file = ruleSetFile(rules, config, stats);
writeFileSync(new URL('../src/compiler/substitutions/rules.json', import.meta.url), JSON.stringify(file, null, 0).replace(/\],\[/g, '],\n['));
const polynomial = rules.filter((r) => r.verified === 'polynomial').length;
const summary = { date: new Date().toISOString(), node: process.version, ...stats, polynomialRules: polynomial, randomizedRules: rules.length - polynomial };
writeFileSync(new URL('./results/substitution-rules.json', import.meta.url), JSON.stringify(summary, null, 2) + '\n');
console.log(JSON.stringify(summary, null, 2));
