// Client stream sockets to remote block servers (NBD, later NVMe/TCP): non-blocking connect over
// TCP (IPv4/IPv6 literals; names are resolved by the caller) or a Unix socket, and send/recv
// between the socket and native buffers through a msghdr made once per socket, so a call on the
// data path allocates nothing.
import { isIP } from 'node:net';
import { c, nativeScratch, O_CLOEXEC, type NativeScratch } from './libc.ts';
import { EAGAIN, EINTR, lastErrno, SysError, throwErrno } from './errno.ts';
import { mmapAnonymous, munmap, viewOf } from './memory.ts';

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const EINPROGRESS = 115;
const POLLOUT = 4;
const TWO_32 = 0x1_0000_0000;

export type StreamTarget = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** "unix:/path" or "host:port" / "[v6]:port", for logs and errors. */
export function describeTarget(t: StreamTarget): string {
  return t.kind === 'unix' ? `unix:${t.path}` : isIP(t.host) === 6 ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

function ipv4Bytes(ip: string): number[] {
  return ip.split('.').map((p) => Number(p));
}

function ipv6Bytes(ip: string): number[] {
  let text = ip;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    // An embedded IPv4 address (::ffff:1.2.3.4).
    tail = ipv4Bytes(text.slice(lastColon + 1));
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, null];
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const hw = words(head);
  const rw = rest === null ? [] : words(rest);
  const all = rest === null ? hw : [...hw, ...new Array<number>(8 - hw.length - rw.length).fill(0), ...rw];
  const out: number[] = [];
  for (const w of all) out.push(w >> 8, w & 0xff);
  if (tail.length === 4) out.splice(12, 4, ...tail);
  return out;
}

function sockaddr(t: StreamTarget): { family: number; sa: Uint8Array } {
  if (t.kind === 'unix') {
    const enc = new TextEncoder().encode(t.path);
    if (enc.length >= 108) throw new SysError('connect', 36, `socket path too long (${enc.length} bytes, max 107): ${t.path}`);
    const sa = new Uint8Array(110);
    sa[0] = AF_UNIX;
    sa.set(enc, 2);
    return { family: AF_UNIX, sa };
  }
  const v = isIP(t.host);
  if (v === 0) throw new SysError('connect', 22, `'${t.host}' is not an IP address`);
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new SysError('connect', 22, `port ${t.port} is not in 1..65535`);
  if (v === 4) {
    const sa = new Uint8Array(16);
    sa[0] = AF_INET;
    sa[2] = t.port >> 8;
    sa[3] = t.port & 0xff;
    sa.set(ipv4Bytes(t.host), 4);
    return { family: AF_INET, sa };
  }
  const sa = new Uint8Array(28);
  sa[0] = AF_INET6;
  sa[2] = t.port >> 8;
  sa[3] = t.port & 0xff;
  sa.set(ipv6Bytes(t.host), 8);
  return { family: AF_INET6, sa };
}

/**
 * Starts a non-blocking connect. Returns the socket (close it with closeFd) and whether the
 * connect is still in progress (then connectStatus tells when it finished). Throws on an
 * immediate failure (ECONNREFUSED, ENOENT for a missing Unix socket).
 */
export function startConnect(t: StreamTarget): { fd: number; pending: boolean } {
  const { family, sa } = sockaddr(t);
  const fd = c.socket(family, SOCK_STREAM | SOCK_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) throwErrno('socket');
  if (family !== AF_UNIX) {
    const one = new Int32Array([1]);
    c.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4);
  }
  if (c.connect(fd, sa, sa.length) === 0) return { fd, pending: false };
  const e = lastErrno();
  if (e === EINPROGRESS) return { fd, pending: true };
  c.close(fd);
  throw new SysError('connect', e, describeTarget(t));
}

const pollFd = new Int32Array(2); // struct pollfd: fd, events | revents << 16
const soError = new Int32Array(1);
const soErrorLen = new Uint32Array(1);

/** Of a connect in progress: 0 once connected, -1 while pending, else the errno it failed with. */
export function connectStatus(fd: number): number {
  pollFd[0] = fd;
  pollFd[1] = POLLOUT;
  const n = c.poll(pollFd, 1, 0);
  if (n < 0) return lastErrno() === EINTR ? -1 : lastErrno();
  if (n === 0) return -1;
  soErrorLen[0] = 4;
  if (c.getsockopt_i32(fd, SOL_SOCKET, SO_ERROR, soError, soErrorLen) < 0) return lastErrno();
  return soError[0];
}

/** Page-aligned native memory with a view; for socket buffers that live as long as a connection. */
export class NativeBuffer {
  readonly length: number;
  /** Address as a number (exact below 2^53). */
  readonly addr: number;
  readonly bytes: Uint8Array;
  #addr: bigint;
  #freed = false;

  constructor(length: number) {
    this.length = Math.ceil(length / 4096) * 4096;
    this.#addr = mmapAnonymous(this.length);
    this.addr = Number(this.#addr);
    this.bytes = new Uint8Array(viewOf(this.#addr, this.length));
  }

  /** The caller guarantees `bytes` is not read again. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    munmap(this.#addr, this.length);
  }
}

/** Send and receive on one connected stream socket, between it and native memory. */
export class SocketStream {
  readonly fd: number;
  readonly #msg: NativeScratch;
  readonly #u32: Uint32Array;

  constructor(fd: number) {
    this.fd = fd;
    // msghdr (56 bytes) followed by one iovec (16 bytes).
    this.#msg = nativeScratch(72);
    this.#u32 = new Uint32Array(this.#msg.bytes.buffer, this.#msg.bytes.byteOffset, 18);
    const dv = this.#msg.dv;
    dv.setBigUint64(16, this.#msg.addr + 56n, true); // msg_iov
    dv.setBigUint64(24, 1n, true); // msg_iovlen
  }

  #iov(addr: number, len: number): void {
    const u = this.#u32;
    u[14] = addr % TWO_32;
    u[15] = Math.floor(addr / TWO_32);
    u[16] = len;
    u[17] = 0;
  }

  /** Sends from buf[off, off+len); bytes sent, 0 when the socket is full, or -errno (EPIPE...). */
  send(buf: NativeBuffer, off: number, len: number): number {
    this.#iov(buf.addr + off, len);
    const n = Number(c.sendmsg(this.fd, this.#msg.addr, MSG_DONTWAIT | MSG_NOSIGNAL));
    if (n >= 0) return n;
    const e = lastErrno();
    return e === EAGAIN || e === EINTR ? 0 : -e;
  }

  /** Receives into buf[off, off+len); bytes received, -EAGAIN when none, 0 at end of stream, or -errno. */
  recv(buf: NativeBuffer, off: number, len: number): number {
    this.#iov(buf.addr + off, len);
    const n = Number(c.recvmsg(this.fd, this.#msg.addr, MSG_DONTWAIT));
    if (n >= 0) return n;
    const e = lastErrno();
    return e === EINTR ? -EAGAIN : -e;
  }
}
