// Which algorithms each collective offers. The order is the tie-break order of the cost model.
export const ALGORITHMS = {
  broadcast: ['tree', 'ring'],
  reduce: ['tree', 'ring'],
  scatter: ['tree', 'linear'],
  gather: ['tree', 'linear'],
  allGather: ['ring', 'recursive-doubling', 'tree'],
  reduceScatter: ['ring', 'recursive-halving', 'tree'],
  allReduce: ['ring', 'tree', 'recursive-doubling', 'rabenseifner'],
  allToAll: ['pairwise', 'linear'],
  barrier: ['dissemination', 'tree'],
} as const;

export type Collective = keyof typeof ALGORITHMS;
export type AlgorithmOf<C extends Collective> = (typeof ALGORITHMS)[C][number];
export type Algorithm = AlgorithmOf<Collective>;

export function checkAlgorithm<C extends Collective>(collective: C, algorithm: string): AlgorithmOf<C> {
  const list: readonly string[] = ALGORITHMS[collective];
  if (!list.includes(algorithm)) {
    throw new RangeError(`${collective}: unknown algorithm '${algorithm}'; choose one of ${list.join(', ')} or 'auto'`);
  }
  return algorithm as AlgorithmOf<C>;
}
