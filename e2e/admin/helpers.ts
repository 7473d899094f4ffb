/**
 * Helpers for the admin console spec: driving the console page, saving screenshots, and reading
 * a safetensors file without the project's own reader (so the check is independent of it).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type Page } from '@playwright/test';

export const ARTIFACTS = join(import.meta.dirname, '../artifacts');

export type AdminView = 'overview' | 'workers' | 'links' | 'control' | 'checkpoints' | 'new-job';

/** Opens a view by its tab, as a person would, and waits until it shows. */
export async function openView(page: Page, view: AdminView): Promise<void> {
  await page.locator(`nav.tabs a[data-view="${view}"]`).click();
  await expect(page.locator(`#view-${view}`)).toBeVisible();
}

/** Saves a full-page screenshot under e2e/artifacts/ and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  // Let charts and toasts settle: the console redraws once a second.
  await page.waitForTimeout(300);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export async function signIn(page: Page, token: string): Promise<void> {
  await page.locator('#token').fill(token);
  await page.locator('#sign-in').click();
  await expect(page.locator('#console')).toBeVisible();
  await expect(page.locator('#live')).toHaveText('live', { timeout: 15_000 });
}

export interface RawSafetensors {
  readonly header: Record<string, unknown>;
  readonly headerBytes: number;
  readonly dataStart: number;
}

/**
 * Parses the framing of a safetensors file by the format's definition: u64 LE header length,
 * a JSON header, then the data. Checks the framing rules the reference reader enforces.
 */
export function parseSafetensorsFraming(bytes: Uint8Array): RawSafetensors {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = Number(view.getBigUint64(0, true));
  expect(8 + headerBytes).toBeLessThanOrEqual(bytes.byteLength);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes));
  const header = JSON.parse(text) as Record<string, unknown>;
  const dataStart = 8 + headerBytes;
  return { header, headerBytes, dataStart };
}

/** One F32 tensor's values straight from the file's bytes. */
export function readF32(
  bytes: Uint8Array,
  dataStart: number,
  offsets: [number, number],
): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((offsets[1] - offsets[0]) / 4);
  for (let i = 0; i < out.length; i++)
    out[i] = view.getFloat32(dataStart + offsets[0] + i * 4, true);
  return out;
}
