// Splits a socket's bytes into lines for the control protocol, with a cap: a
// peer that sends a megabyte without a newline is cut off, not buffered forever.

import type { Socket } from 'node:net';
import { MAX_CONTROL_LINE_BYTES } from '../core/control.js';

export function onControlLines(socket: Socket, onLine: (line: string) => void, onTooLong: () => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim() !== '') onLine(line);
    }
    if (Buffer.byteLength(buffered) > MAX_CONTROL_LINE_BYTES) {
      buffered = '';
      onTooLong();
    }
  });
}

export function writeControlLine(socket: Socket, value: unknown): void {
  if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(value)}\n`);
}
