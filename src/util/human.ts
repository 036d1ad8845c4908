// Numbers for people (progress lines, nydusctl tables, logs): the one byte formatter.

/** Bytes for people: 1023 B, 1.5 KiB, 3.2 MiB ... */
export function humanBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
