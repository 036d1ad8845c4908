// Blob-side structures (spec §7, §8): CI header and entries, ToC, tar headers, digest array,
// blob meta helpers and the blob cache chunk_map / .blob.meta layouts. Pure codecs.
export * from './ci-entry.js';
export * from './chunk-info-v1.js';
export * from './chunk-info-v2.js';
export * from './meta-header.js';
export * from './tar-header.js';
export * from './toc.js';
export * from './chunk-digests.js';
export * from './chunk-map.js';
export * from './blob-meta.js';
export * from './zran.js';
export * from './batch.js';
