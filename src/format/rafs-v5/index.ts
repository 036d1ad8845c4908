// RAFS v5 bootstrap structures (spec §4): pure decode/encode/validate codecs, no I/O.
export * from './superblock.js';
export * from './inode-table.js';
export * from './prefetch-table.js';
export * from './blob-table.js';
export * from './xattr.js';
export * from './inode.js';
