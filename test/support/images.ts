import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/logos');

/** Logos drawn by Chromium's canvas (96×96), as a municipality would upload them. */
export const PNG_LOGO = fs.readFileSync(path.join(FIXTURES, 'logo-96.png'));
export const JPEG_LOGO = fs.readFileSync(path.join(FIXTURES, 'logo-96.jpg'));

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** A real, decodable PNG of one colour and any size (for sizes the fixtures do not have). */
export function solidPng(width: number, height: number, rgb: [number, number, number] = [26, 79, 156]): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => rgb).flat())]);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
