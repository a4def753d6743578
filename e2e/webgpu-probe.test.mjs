// Proves both browser modes the tests rely on: with the WebGPU flags, headless Chromium
// offers an adapter (SwiftShader, since test machines have no GPU) that really computes;
// without them, requestAdapter() resolves to null, so the app must take its CPU path.
// Needs no build: the probe page is served by Playwright's request routing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchChromium } from './browser.mjs';

// localhost counts as a secure context, which WebGPU requires.
const PROBE_URL = 'http://127.0.0.1:9/webgpu-probe.html';

async function probe(webgpu) {
  const browser = await launchChromium({ webgpu });
  try {
    const page = await browser.newPage();
    await page.route(PROBE_URL, (route) =>
      route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>probe</title>' }),
    );
    await page.goto(PROBE_URL);
    return await page.evaluate(async () => {
      const result = { secure: isSecureContext, hasGpuObject: 'gpu' in navigator, adapter: null };
      if (!navigator.gpu) return result;
      const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) return result;
      result.adapter = {
        vendor: adapter.info?.vendor ?? '',
        architecture: adapter.info?.architecture ?? '',
        isFallback: adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? null,
      };
      // A one-dispatch compute shader: doubles four floats. Proves the adapter works,
      // not just that it exists.
      const device = await adapter.requestDevice();
      const data = device.createBuffer({
        size: 16,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
        mappedAtCreation: true,
      });
      new Float32Array(data.getMappedRange()).set([1, 2, 3, 4]);
      data.unmap();
      const module = device.createShaderModule({
        code: `@group(0) @binding(0) var<storage, read_write> v: array<f32>;
               @compute @workgroup_size(4)
               fn main(@builtin(global_invocation_id) id: vec3<u32>) { v[id.x] = v[id.x] * 2.0; }`,
      });
      const pipeline = device.createComputePipeline({
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
      });
      const bindGroup = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: data } }],
      });
      const readback = device.createBuffer({
        size: 16,
        usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
      });
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(1);
      pass.end();
      encoder.copyBufferToBuffer(data, 0, readback, 0, 16);
      device.queue.submit([encoder.finish()]);
      await readback.mapAsync(GPUMapMode.READ);
      result.computed = Array.from(new Float32Array(readback.getMappedRange()));
      device.destroy();
      return result;
    });
  } finally {
    await browser.close();
  }
}

test('WebGPU flags give a working adapter', { timeout: 120_000 }, async () => {
  const result = await probe(true);
  assert.equal(result.secure, true, 'the probe page must be a secure context');
  assert.ok(result.adapter, `no WebGPU adapter with the WebGPU flags: ${JSON.stringify(result)}`);
  assert.deepEqual(result.computed, [2, 4, 6, 8]);
});

test('CPU mode has no WebGPU adapter', { timeout: 120_000 }, async () => {
  const result = await probe(false);
  assert.equal(result.secure, true, 'the probe page must be a secure context');
  assert.equal(result.adapter, null, `expected no adapter, got ${JSON.stringify(result)}`);
});
