// RAFS-specific structures of a v6 bootstrap (spec §5.3, §5.5, §5.13).
export * from './ext-superblock.js';
export * from './blob-table.js';
export * from './prefetch-table.js';
