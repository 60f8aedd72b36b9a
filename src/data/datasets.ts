// Loaders for the datasets the demos use: the 10,000 MNIST digits, tiny Shakespeare and GPT-2's BPE
// files shipped in the repository's data/ folder, and Fashion-MNIST from a directory the user gives.
// This is a Node adapter (it reads files); the parsers it calls are browser-safe.
//
// The shipped files are found relative to this module, two folders up (src/data/ → data/ when run from
// source with tsx, dist/data/ → data/ when run from the build), so it works from a clone and from the
// installed package (package.json ships data/).

import { loadFile, loadMaybeGzippedFile } from '../io/file.js';
import { BpeTokenizer } from './bpe.js';
import { parseCsvTable, type CsvTable, type CsvTableOptions } from './csv.js';
import { parseIdx, type IdxArray } from './idx.js';
import { randomPermutation, SeededRandom } from './random.js';

/** The data/ folder of the repository (or of the installed package). */
export const SHIPPED_DATA_DIR: URL = new URL('../../data/', import.meta.url);

/** Grey-scale images with one class label each, as bytes. */
export interface ImageSet {
  /** count × height × width pixels, row-major, 0..255. */
  images: Uint8Array;
  /** One class index per image. */
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  classNames: readonly string[];
}

export interface ImageSplit {
  train: ImageSet;
  test: ImageSet;
}

export const MNIST_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/** Reads an IDX file, gzipped or not. */
export async function readIdxFile(path: string | URL): Promise<IdxArray> {
  const name = path instanceof URL ? path.pathname.split('/').pop()! : path;
  return parseIdx(await loadMaybeGzippedFile(path), name);
}

/** Reads a CSV table (gzipped or not) of numeric features and a label column; see parseCsvTable. */
export async function readCsvTable(path: string | URL, options?: CsvTableOptions): Promise<CsvTable> {
  return parseCsvTable(new TextDecoder().decode(await loadMaybeGzippedFile(path)), options);
}

/** Reads a UTF-8 text file, gzipped or not. */
export async function readTextFile(path: string | URL): Promise<string> {
  return new TextDecoder('utf-8').decode(await loadMaybeGzippedFile(path));
}

/** Combines an IDX image file and an IDX label file into an ImageSet, checking that they belong together. */
export function imageSetOf(images: IdxArray, labels: IdxArray, classNames: readonly string[], what: string): ImageSet {
  if (images.dtype !== 'u8' || images.shape.length !== 3) {
    throw new Error(`${what}: the image file holds ${images.dtype} of shape ${JSON.stringify(images.shape)}; expected u8 of shape [count, height, width] (magic 0x0803).`);
  }
  if (labels.dtype !== 'u8' || labels.shape.length !== 1) {
    throw new Error(`${what}: the label file holds ${labels.dtype} of shape ${JSON.stringify(labels.shape)}; expected u8 of shape [count] (magic 0x0801).`);
  }
  const [count, height, width] = images.shape as [number, number, number];
  if (labels.shape[0] !== count) {
    throw new Error(`${what}: ${count} images but ${labels.shape[0]} labels; the two files do not belong together.`);
  }
  const bad = labels.data.findIndex((l) => l >= classNames.length);
  if (bad >= 0) throw new Error(`${what}: label ${labels.data[bad]} of record ${bad} is not below the ${classNames.length} classes.`);
  return { images: images.data, labels: labels.data, count, height, width, classNames };
}

/** The records of `set` at `indices`, in that order (copied). */
export function selectImages(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  const pixels = set.height * set.width;
  const images = new Uint8Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i]!;
    if (!Number.isInteger(r) || r < 0 || r >= set.count) throw new Error(`selectImages: index ${r} is outside [0, ${set.count}).`);
    images.set(set.images.subarray(r * pixels, (r + 1) * pixels), i * pixels);
    labels[i] = set.labels[r]!;
  }
  return { ...set, images, labels, count: indices.length };
}

export interface Mnist10kOptions {
  /** Seed of the shuffle that splits the records (default 0). */
  seed?: number;
  /** Records held out for testing (default 1,000; the other 9,000 train). */
  testSize?: number;
}

/**
 * The 10,000 MNIST digits shipped in data/mnist/. The files are sorted by class, so the split is a seeded
 * shuffle: by default 9,000 train / 1,000 test records, the same for the same seed on every machine.
 */
export async function loadMnist10k(options: Mnist10kOptions = {}): Promise<ImageSplit> {
  const seed = options.seed ?? 0;
  const testSize = options.testSize ?? 1000;
  const dir = new URL('mnist/', SHIPPED_DATA_DIR);
  const [images, labels] = await Promise.all([
    readIdxFile(new URL('mnist10k-images-idx3-ubyte.gz', dir)),
    readIdxFile(new URL('mnist10k-labels-idx1-ubyte.gz', dir)),
  ]);
  const all = imageSetOf(images, labels, MNIST_CLASSES, 'loadMnist10k');
  if (!Number.isInteger(testSize) || testSize < 0 || testSize > all.count) {
    throw new Error(`loadMnist10k: testSize ${testSize} must be an integer in [0, ${all.count}].`);
  }
  const order = randomPermutation(all.count, new SeededRandom(seed));
  return {
    train: selectImages(all, order.subarray(testSize)),
    test: selectImages(all, order.subarray(0, testSize)),
  };
}

/** Where Debian's `dataset-fashion-mnist` package puts the files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * Fashion-MNIST (60,000 train / 10,000 test) from `dir`, which holds train-images-idx3-ubyte,
 * train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each gzipped (.gz) or not.
 * On Debian, `apt-get install dataset-fashion-mnist` provides them in /usr/share/datasets/fashion-mnist.
 */
export async function loadFashionMnist(dir: string = DEBIAN_FASHION_MNIST_DIR): Promise<ImageSplit> {
  const { access } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const find = async (stem: string): Promise<string> => {
    for (const name of [`${stem}.gz`, stem]) {
      const path = join(dir, name);
      try {
        await access(path);
        return path;
      } catch {
        /* try the next name */
      }
    }
    throw new Error(
      `loadFashionMnist: neither ${stem}.gz nor ${stem} is in ${dir}. Give the directory that holds the four Fashion-MNIST IDX files` +
        ` (on Debian: apt-get install dataset-fashion-mnist, then use ${DEBIAN_FASHION_MNIST_DIR}).`,
    );
  };
  const paths = await Promise.all(
    ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'].map(find),
  );
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all(paths.map(readIdxFile));
  return {
    train: imageSetOf(trainImages!, trainLabels!, FASHION_MNIST_CLASSES, `loadFashionMnist (train, ${dir})`),
    test: imageSetOf(testImages!, testLabels!, FASHION_MNIST_CLASSES, `loadFashionMnist (t10k, ${dir})`),
  };
}

/** Tiny Shakespeare (about 1.1 MB of text), shipped as data/tinyshakespeare.txt.gz. */
export async function loadTinyShakespeare(): Promise<string> {
  return readTextFile(new URL('tinyshakespeare.txt.gz', SHIPPED_DATA_DIR));
}

/** GPT-2's tokenizer from `encoder.json` and `vocab.bpe` in `dir` (default: the copies in data/gpt2/). */
export async function loadGpt2Tokenizer(dir?: string): Promise<BpeTokenizer> {
  const base = dir === undefined ? new URL('gpt2/', SHIPPED_DATA_DIR) : await directoryUrl(dir);
  const decode = (b: Uint8Array) => new TextDecoder('utf-8').decode(b);
  const [encoder, merges] = await Promise.all([loadFile(new URL('encoder.json', base)), loadFile(new URL('vocab.bpe', base))]);
  return BpeTokenizer.fromFiles(decode(encoder), decode(merges));
}

async function directoryUrl(dir: string): Promise<URL> {
  const [{ resolve, sep }, { pathToFileURL }] = await Promise.all([import('node:path'), import('node:url')]);
  return pathToFileURL(resolve(dir) + sep);
}
