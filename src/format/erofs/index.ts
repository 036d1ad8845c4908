// EROFS structures used by RAFS v6 (spec §5).
export * from './constants.js';
export * from './superblock.js';
export * from './device-slot.js';
export * from './inode.js';
export * from './xattr.js';
export * from './dirent.js';
export * from './chunk-index.js';
