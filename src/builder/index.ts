// Public face of the builder: image creation from a directory or tar stream, and the pieces
// (sources, chunk pipeline, dedup) other modules reuse.
export {
  createImage,
  createOutputJson,
  dataOrder,
  parseChunkDictArg,
  parsePrefetchPatterns,
  validateBatchSize,
  validateChunkSize,
  RAFS_DEFAULT_CHUNK_SIZE,
  RAFS_MAX_CHUNK_SIZE,
  RAFS_MIN_CHUNK_SIZE,
  type CreateOptions,
  type CreateResult,
  type PrefetchPolicy,
  type SourceType,
} from './create.js';
export { ChunkPipeline, type ChunkSink, type ChunkStats, type ChunkPipelineOptions } from './chunker.js';
export { ChunkPool, type ProcessedChunk } from './compress-pool.js';
export { BlobTable, ChunkDedup, digestKey } from './dedup.js';
export { scanDirectory, type DirSource, type DirSourceOptions } from './source/dir.js';
export { scanTar, tarPathComponents, makedev, type TarSource, type TarSourceOptions } from './source/tar.js';
export { readTar, type TarEntry, type TarEntryType } from '../format/tar-reader.js';
export { readXattrs, isAllowedXattr } from './source/xattrs.js';
export { applySingleLayerWhiteouts, whiteoutType, type WhiteoutSpec, type WhiteoutType } from './source/whiteout.js';
export type { ImageModel, TreeNode } from '../format/image-model.js';
