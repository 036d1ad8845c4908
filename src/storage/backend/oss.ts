// Aliyun OSS backend: `scheme://<bucket>.<endpoint>/<object_prefix><blob_id>`, header signing
// `Authorization: OSS <id>:base64(HMAC-SHA1(secret, VERB\nContent-MD5\nContent-Type\nDate\n
// CanonicalizedOSSHeaders CanonicalizedResource))`. Upstream: nydus storage/src/backend/oss.rs.
import { createHmac } from 'node:crypto';
import { ObjectStoreBackend, type ObjectStoreConfig } from './s3.js';

export interface OssSignInput {
  method: string;
  contentMd5?: string;
  contentType?: string;
  /** RFC 1123 date, also sent as the Date header. */
  date: string;
  /** All request headers; only `x-oss-*` ones are signed. */
  headers?: Record<string, string>;
  /** `/<bucket>/<key>` */
  resource: string;
  accessKeyId: string;
  accessKeySecret: string;
}

export function signOss(input: OssSignInput): { authorization: string; signature: string; stringToSign: string } {
  const ossHeaders = Object.entries(input.headers ?? {})
    .map(([k, v]) => [k.toLowerCase().trim(), v.trim()] as const)
    .filter(([k]) => k.startsWith('x-oss-'))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, v]) => `${k}:${v}\n`)
    .join('');
  const stringToSign = `${input.method.toUpperCase()}\n${input.contentMd5 ?? ''}\n${input.contentType ?? ''}\n${input.date}\n${ossHeaders}${input.resource}`;
  const signature = createHmac('sha1', input.accessKeySecret).update(stringToSign, 'utf8').digest('base64');
  return { authorization: `OSS ${input.accessKeyId}:${signature}`, signature, stringToSign };
}

export interface OssConfig extends ObjectStoreConfig {}

export class OssBackend extends ObjectStoreBackend {
  constructor(cfg: OssConfig) {
    super('oss', cfg);
  }

  protected objectUrl(key: string): URL {
    return new URL(`${this.scheme}://${this.cfg.bucket_name}.${this.cfg.endpoint}/${key.split('/').map(encodeURIComponent).join('/')}`);
  }

  protected sign(method: string, url: URL, key: string, headers: Record<string, string>): Record<string, string> {
    const date = new Date().toUTCString();
    const { authorization } = signOss({
      method,
      date,
      headers,
      resource: `/${this.cfg.bucket_name}/${key}`,
      accessKeyId: this.cfg.access_key_id ?? '',
      accessKeySecret: this.cfg.access_key_secret ?? '',
    });
    return { ...headers, date, authorization };
  }
}

export function createOssBackend(config: Record<string, unknown> | OssConfig): OssBackend {
  return new OssBackend(config as OssConfig);
}
