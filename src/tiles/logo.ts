import { crc32 } from 'node:zlib';

/** The logo types a tile may have: raster images whose structure Brána checks itself. */
export type LogoType = 'image/png' | 'image/jpeg';
export const MAX_LOGO_BYTES = 256 * 1024;
const MIN_SIDE = 32;
const MAX_SIDE = 2048;

export class LogoRejected extends Error {}

export interface Logo {
  type: LogoType;
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG: signature, IHDR first, every chunk's CRC right, image data, IEND last and nothing after. */
function inspectPng(bytes: Buffer): Logo {
  let offset = PNG_SIGNATURE.length;
  let width = 0;
  let height = 0;
  let sawData = false;
  for (let index = 0; ; index += 1) {
    if (offset + 12 > bytes.length) throw new LogoRejected('is a truncated PNG image');
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const end = offset + 12 + length;
    if (length > 0x7fffffff || end > bytes.length) throw new LogoRejected('is a truncated PNG image');
    const typeAndData = bytes.subarray(offset + 4, offset + 8 + length);
    if (crc32(typeAndData) !== bytes.readUInt32BE(offset + 8 + length)) throw new LogoRejected(`is a damaged PNG image (chunk ${type})`);
    if (index === 0) {
      if (type !== 'IHDR' || length !== 13) throw new LogoRejected('is not a PNG image (no IHDR header)');
      width = bytes.readUInt32BE(offset + 8);
      height = bytes.readUInt32BE(offset + 12);
    }
    if (type === 'IDAT') sawData = true;
    offset = end;
    if (type === 'IEND') break;
  }
  if (!sawData) throw new LogoRejected('is a PNG without image data');
  if (offset !== bytes.length) throw new LogoRejected('has data after the end of the PNG image');
  return { type: 'image/png', width, height };
}

/** A JPEG: SOI, well-formed segments up to a frame header (its size) and the scan, EOI at the end. */
function inspectJpeg(bytes: Buffer): Logo {
  let offset = 2;
  let size: { width: number; height: number } | undefined;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) throw new LogoRejected('is a damaged JPEG image');
    const marker = bytes[offset + 1]!;
    if (marker === 0xff) {
      offset += 1;
      continue;
    }
    const length = bytes.readUInt16BE(offset + 2);
    if (length < 2 || offset + 2 + length > bytes.length) throw new LogoRejected('is a truncated JPEG image');
    // SOF0…SOF15 carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (length < 7) throw new LogoRejected('is a damaged JPEG image');
      size = { height: bytes.readUInt16BE(offset + 5), width: bytes.readUInt16BE(offset + 7) };
    }
    if (marker === 0xda) {
      if (!size) throw new LogoRejected('is a JPEG without a frame header');
      if (bytes[bytes.length - 2] !== 0xff || bytes[bytes.length - 1] !== 0xd9) throw new LogoRejected('is a truncated JPEG image');
      return { type: 'image/jpeg', ...size };
    }
    offset += 2 + length;
  }
  throw new LogoRejected('is a JPEG without image data');
}

/**
 * Decides by its bytes, never by a name or a declared type, whether a logo is an image Brána
 * accepts: PNG or JPEG, structurally whole, of a sensible size. SVG is refused: it is a document
 * that can carry scripts and external references, and a sanitiser would be a large attack surface.
 */
export function inspectLogo(bytes: Buffer): Logo {
  if (bytes.length === 0) throw new LogoRejected('is empty');
  if (bytes.length > MAX_LOGO_BYTES) throw new LogoRejected(`is larger than ${MAX_LOGO_BYTES / 1024} KiB`);
  let logo: Logo;
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) logo = inspectPng(bytes);
  else if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) logo = inspectJpeg(bytes);
  else if (/^\s*(<\?xml|<svg|<!DOCTYPE svg)/i.test(bytes.subarray(0, 200).toString('utf8'))) throw new LogoRejected('is an SVG image: Brána accepts only PNG or JPEG logos');
  else throw new LogoRejected('is not a PNG or JPEG image');
  if (logo.width < MIN_SIDE || logo.height < MIN_SIDE || logo.width > MAX_SIDE || logo.height > MAX_SIDE) {
    throw new LogoRejected(`must be between ${MIN_SIDE} and ${MAX_SIDE} pixels on each side (it is ${logo.width}×${logo.height})`);
  }
  return logo;
}
