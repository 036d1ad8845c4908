// errno values for the FUSE layer. Mapping errors → errno lives in util/errors (errnoOf); this file only
// re-exports it and names the constants the dispatcher uses. All values are positive.
import { constants as osConstants } from 'node:os';
export { FsError, errnoOf } from '../util/errors.js';

const E = osConstants.errno;
export const ENOENT = E.ENOENT;
export const EIO = E.EIO;
export const ENXIO = E.ENXIO;
export const EBADF = E.EBADF;
export const EACCES = E.EACCES;
export const EINVAL = E.EINVAL;
export const ENOSYS = E.ENOSYS;
export const EROFS = E.EROFS;
export const ERANGE = E.ERANGE;
export const ENODATA = E.ENODATA;
export const ENOTDIR = E.ENOTDIR;
export const EISDIR = E.EISDIR;
export const EPROTO = E.EPROTO;
export const ENODEV = E.ENODEV;
export const E2BIG = E.E2BIG;
export const ENOTSUP = E.ENOTSUP;
