// Real media files for tests: a valid PNG and a valid one-page PDF built in
// code, and spoken audio made with espeak-ng and encoded as Ogg/Opus with
// opusenc (as WhatsApp sends voice notes). The audio tools are required: a
// missing one fails loudly with the package to install (.ci/run installs them).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** An RGB PNG of the given size: a colour gradient, so its bytes are not trivially compressible to nothing. */
export function pngBytes(width = 16, height = 16, seed = 0): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) {
      row[1 + x * 3] = (x * 16 + seed) & 0xff;
      row[2 + x * 3] = (y * 16 + seed * 7) & 0xff;
      row[3 + x * 3] = ((x ^ y) * 8 + seed * 13) & 0xff;
    }
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows), { level: 0 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A valid one-page PDF showing `text` (cross-reference offsets computed). */
export function pdfBytes(text: string): Buffer {
  const stream = `BT /F1 18 Tf 40 700 Td (${text.replace(/[()\\]/g, '')}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) out += `${String(offset).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

function requireTool(command: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${command}`]).status !== 0) {
    throw new Error(`${command} is required for the voice-note tests: apt-get install ${pkg}`);
  }
}

/** Speaks `text` with espeak-ng and encodes it as Ogg/Opus into `dir`; returns the file path. */
export function spokenOggOpus(text: string, dir: string): string {
  requireTool('espeak-ng', 'espeak-ng');
  requireTool('opusenc', 'opus-tools');
  const wav = path.join(dir, 'speech.wav');
  const ogg = path.join(dir, 'voice.ogg');
  const spoken = spawnSync('espeak-ng', ['-w', wav, text], { encoding: 'utf8' });
  if (spoken.status !== 0) throw new Error(`espeak-ng failed: ${spoken.stderr}`);
  const encoded = spawnSync('opusenc', ['--quiet', '--bitrate', '24', wav, ogg], { encoding: 'utf8' });
  if (encoded.status !== 0) throw new Error(`opusenc failed: ${encoded.stderr}`);
  fs.rmSync(wav);
  return ogg;
}
