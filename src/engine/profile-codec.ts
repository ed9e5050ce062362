import type { AttrValue } from './event.js';
import { BinaryReader, BinaryWriter } from './binary.js';
import type { Profile } from './ports.js';

const FORMAT = 1;

/**
 * The stored form of a profile: a compact binary value written straight from
 * the engine's state (no intermediate objects), read back by {@link decodeProfile}.
 * Layout: format byte; attribute count, then per attribute name, value and
 * update time; tag count, then per tag id, value, update time and version.
 */
export class ProfileEncoder {
  private readonly w = new BinaryWriter();
  private attrCount = 0;
  private tagCount = 0;
  private countAt = 0;

  /** Starts a profile; attributes come first. */
  begin(): void {
    this.w.reset();
    this.w.u8(FORMAT);
    this.countAt = this.w.pos;
    this.w.u32(0);
    this.attrCount = 0;
  }

  attribute(name: string, value: AttrValue, updatedAt: number): void {
    this.w.str(name);
    this.w.value(value);
    this.w.f64(updatedAt);
    this.attrCount++;
  }

  /** Ends the attributes; tags follow. */
  beginTags(): void {
    this.patch(this.countAt, this.attrCount);
    this.countAt = this.w.pos;
    this.w.u32(0);
    this.tagCount = 0;
  }

  tag(id: string, value: AttrValue, updatedAt: number, version: number): void {
    this.w.str(id);
    this.w.value(value);
    this.w.f64(updatedAt);
    this.w.u32(version);
    this.tagCount++;
  }

  /** The encoded profile. */
  end(): Uint8Array {
    this.patch(this.countAt, this.tagCount);
    return this.w.bytes();
  }

  private patch(at: number, n: number): void {
    const end = this.w.pos;
    this.w.pos = at;
    this.w.u32(n);
    this.w.pos = end;
  }
}

/** Decodes a profile written by {@link ProfileEncoder}. */
export function decodeProfile(key: string, bytes: Uint8Array): Profile {
  const r = new BinaryReader(bytes);
  r.u8(); // format
  const profile: Profile = { key, attributes: {}, tags: {} };
  for (let n = r.u32(); n > 0; n--) {
    const name = r.str();
    const value = r.value();
    profile.attributes[name] = { value, updatedAt: r.f64() };
  }
  for (let n = r.u32(); n > 0; n--) {
    const id = r.str();
    const value = r.value();
    const updatedAt = r.f64();
    profile.tags[id] = { value, updatedAt, version: r.u32() };
  }
  return profile;
}
