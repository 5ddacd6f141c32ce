// Voice notes, photos and documents end to end (issue 13) through `chat --json`
// with the real Claude Code engine in bwrap and the scripted fake model: an
// attachment reaches the agent's prompt as <attachment/>, the agent's Read tool
// gives the model the image (and the PDF) itself, send_file reaches the channel,
// and a real spoken Ogg/Opus voice note is transcribed by an OpenAI-compatible
// server over real HTTP (multipart) before the prompt is built — or, with the
// server down, arrives as placeholder plus file and is still answered.

import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { RecordedRequest } from '../support/fake-model-server.js';
import { pdfBytes, pngBytes, spokenOggOpus } from '../support/media-fixtures.js';
import { answeredToolResult, lastUserText, toolResultCount, useAgentFixture } from './agent-support.js';

const fixture = useAgentFixture();

type Block = {
  type: string;
  content?: unknown;
  source?: { type?: string; media_type?: string; data?: string };
};

/** The content blocks of the newest tool_result of a request (images and documents included). */
function toolResultBlocks(request: RecordedRequest): Block[] {
  const messages = (request.body as { messages?: Array<{ content: unknown }> } | null)?.messages ?? [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const content = messages[i].content;
    if (!Array.isArray(content)) continue;
    const result = (content as Block[]).filter((b) => b.type === 'tool_result').at(-1);
    if (!result) continue;
    return Array.isArray(result.content) ? (result.content as Block[]) : [];
  }
  return [];
}

const ATTACHMENT = /<attachment type="([^"]+)" path="([^"]+)"\/>/;

function scratchDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-media-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The model reads the attachment its prompt names, then reports what the tool gave it. */
function readAttachmentRoute(seen: { prompt?: string; result?: Block[] }) {
  return (req: RecordedRequest) => {
    if (answeredToolResult(req)) {
      seen.result = toolResultBlocks(req);
      return { text: `read it: ${seen.result.map((b) => b.type).join(',')}` };
    }
    const prompt = lastUserText(req);
    const match = ATTACHMENT.exec(prompt);
    if (!match) return { text: 'no attachment in the prompt' };
    seen.prompt = prompt;
    return { toolUse: { name: 'Read', input: { file_path: `/workspace/group/${match[2]}` } } };
  };
}

/** A real HTTP server speaking OpenAI's /v1/audio/transcriptions (multipart in, JSON out). */
async function fakeTranscriptionServer(transcript: string) {
  const requests: Array<{ contentType: string; auth?: string; body: Buffer }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        contentType: req.headers['content-type'] ?? '',
        auth: req.headers.authorization,
        body: Buffer.concat(chunks),
      });
      if (req.url !== '/v1/audio/transcriptions') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ text: transcript }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

describe('media with the real agent', () => {
  it('an image attachment reaches the agent, and its Read gives the model the image itself', async () => {
    const seen: { prompt?: string; result?: Block[] } = {};
    const { home } = await fixture.setUp(readAttachmentRoute(seen));
    const png = pngBytes(24, 24, 3);
    const file = path.join(scratchDir(), 'photo.png');
    fs.writeFileSync(file, png);
    const chat = fixture.chat(home.env);
    chat.send(JSON.stringify({ text: 'what is in this photo?', id: 'p1', attachments: [{ path: file }] }));
    const [reply] = await chat.waitFor((lines) => lines.length >= 1, 60_000);
    expect(reply.text).toBe('read it: image');
    expect(seen.prompt).toMatch(
      /what is in this photo\?\n<attachment type="image\/png" path="media\/\d{4}-\d{2}-\d{2}\/p1\.png"\/>/,
    );
    const image = seen.result?.find((b) => b.type === 'image');
    expect(image?.source).toMatchObject({ type: 'base64', media_type: 'image/png' });
    expect(Buffer.from(image?.source?.data ?? '', 'base64').subarray(0, 8)).toEqual(png.subarray(0, 8));
    const stored = ATTACHMENT.exec(seen.prompt ?? '')?.[2] ?? '';
    expect(fs.readFileSync(path.join(home.dir, 'groups', 'main', stored)).equals(png)).toBe(true);
    expect(await chat.end()).toBe(0);
  });

  it('a PDF attachment reaches the agent, and its Read gives the model the document', async () => {
    const seen: { prompt?: string; result?: Block[] } = {};
    const { home } = await fixture.setUp(readAttachmentRoute(seen));
    const file = path.join(scratchDir(), 'invoice.pdf');
    fs.writeFileSync(file, pdfBytes('Invoice 42: total 99 EUR'));
    const chat = fixture.chat(home.env);
    chat.send(JSON.stringify({ id: 'd1', attachments: [{ path: file, type: 'application/pdf' }] }));
    const [reply] = await chat.waitFor((lines) => lines.length >= 1, 60_000);
    expect(seen.prompt).toMatch(
      /\[document: invoice\.pdf\]\n<attachment type="application\/pdf" path="media\/[\d-]+\/d1\.pdf"\/>/,
    );
    expect(reply.text).toMatch(/^read it: /);
    const document = seen.result?.find((b) => b.type === 'document');
    expect(document?.source).toMatchObject({ type: 'base64', media_type: 'application/pdf' });
    expect(Buffer.from(document?.source?.data ?? '', 'base64').toString('latin1')).toContain(
      'Invoice 42: total 99 EUR',
    );
    expect(await chat.end()).toBe(0);
  });

  it('send_file from the agent reaches the chat as {"chat","file","caption"}', async () => {
    const { home } = await fixture.setUp((req) => {
      const step = toolResultCount(req);
      if (!lastUserText(req).includes('send me the list') && step === 0)
        return { text: 'unexpected request' };
      if (step === 0) {
        return {
          toolUse: {
            name: 'Write',
            input: { file_path: '/workspace/group/out/list.txt', content: 'milk\nbread\n' },
          },
        };
      }
      if (step === 1) {
        return {
          toolUse: {
            name: 'mcp__nanoclaw__send_file',
            input: { path: 'out/list.txt', caption: 'your list' },
          },
        };
      }
      const result = answeredToolResult(req);
      return { text: `send_file said: ${result?.isError ? 'error' : 'ok'} ${result?.text ?? ''}` };
    });
    const chat = fixture.chat(home.env);
    chat.send({ text: 'send me the list' });
    await chat.waitFor((lines) => lines.length >= 1, 60_000);
    expect(chat.lines[0].text).toMatch(/^send_file said: ok .*"sent":true/);
    const sent = chat.records.find((r) => 'file' in r);
    expect(sent).toMatchObject({ chat: 'local:main', caption: 'your list' });
    // The file printed is the host's copy, taken when the tool ran.
    expect(fs.readFileSync(String(sent?.file), 'utf8')).toBe('milk\nbread\n');
    expect(chat.records.indexOf(sent!)).toBeLessThan(chat.records.findIndex((r) => 'text' in r));
    expect(await chat.end()).toBe(0);
  });

  it('a spoken voice note is transcribed on the host and the transcript is in the prompt', async () => {
    const speech = await fakeTranscriptionServer('please buy oat milk');
    const prompts: string[] = [];
    const { home } = await fixture.setUp((req) => {
      prompts.push(lastUserText(req));
      return { text: 'noted' };
    });
    const ogg = spokenOggOpus('please buy oat milk', scratchDir());
    const chat = fixture.chat({
      ...home.env,
      NANOCLAW_TRANSCRIBER: 'openai-compatible',
      NANOCLAW_TRANSCRIBER_URL: speech.url,
      NANOCLAW_TRANSCRIBER_KEY: 'sk-speech-host-only',
    });
    chat.send(JSON.stringify({ id: 'v1', attachments: [{ path: ogg, type: 'audio/ogg; codecs=opus' }] }));
    await chat.waitFor((lines) => lines.some((l) => l.text === 'noted'), 60_000);
    expect(prompts.at(-1)).toMatch(
      /\[voice message, transcribed\] please buy oat milk\n<attachment type="audio\/ogg; codecs=opus" path="media\/[\d-]+\/v1\.ogg"\/>/,
    );
    expect(speech.requests).toHaveLength(1);
    const [request] = speech.requests;
    expect(request.contentType).toMatch(/^multipart\/form-data/);
    expect(request.auth).toBe('Bearer sk-speech-host-only');
    // The real Ogg/Opus file went up: its capture pattern and the Opus header are in the body.
    expect(request.body.includes(Buffer.from('OggS'))).toBe(true);
    expect(request.body.includes(Buffer.from('OpusHead'))).toBe(true);
    expect(await chat.end()).toBe(0);
  });

  it('with the speech service down, the voice note arrives as placeholder plus file and is answered', async () => {
    const prompts: string[] = [];
    const { home } = await fixture.setUp((req) => {
      prompts.push(lastUserText(req));
      return { text: 'I got a voice message' };
    });
    const ogg = spokenOggOpus('call me back', scratchDir());
    const chat = fixture.chat({
      ...home.env,
      NANOCLAW_TRANSCRIBER: 'openai-compatible',
      NANOCLAW_TRANSCRIBER_URL: 'http://127.0.0.1:9',
    });
    chat.send(JSON.stringify({ id: 'v2', attachments: [{ path: ogg, type: 'audio/ogg' }] }));
    await chat.waitFor((lines) => lines.some((l) => l.text === 'I got a voice message'), 60_000);
    expect(prompts.at(-1)).toMatch(
      />\[audio\]\n<attachment type="audio\/ogg" path="media\/[\d-]+\/v2\.ogg"\/><\/message>/,
    );
    expect(await chat.end()).toBe(0);
  });
});
