// The official `ollama` and `openai` npm packages, used as their users do,
// against the gateway: t/017-clients.t runs one call per process and reads
// what the client returned, as JSON on stdout.
//
//   NODE_PATH=build/node/node_modules NODE_EXTRA_CA_CERTS=ca.pem \
//   node --require t/node/example-hosts.cjs t/node/clients.cjs CALL [TEXT]
//
// SEADRAGON_URL is the gateway (https://api.example.com:PORT), SEADRAGON_KEY
// the API key; TEXT goes into the prompt, so that the stand-in's record
// tells the calls apart.  A call that throws prints
// {"error":{"name","status","message"}} and exits 0: the test decides.
'use strict';

const { Ollama } = require('ollama');
const { OpenAI } = require('openai');

const base = process.env.SEADRAGON_URL;
const key = process.env.SEADRAGON_KEY;
const [call, text = 'Why is the sky blue?'] = process.argv.slice(2);

const ollama = new Ollama({ host: base, headers: { Authorization: `Bearer ${key}` } });
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key });

const model = 'llama3:70b';
const embedModel = 'nomic-embed-text';
const messages = [{ role: 'user', content: text }];

const calls = {
    async 'ollama-list'() {
        const r = await ollama.list();
        return { models: r.models.map((m) => m.name) };
    },
    async 'ollama-chat'() {
        const r = await ollama.chat({ model, messages });
        return { model: r.model, role: r.message.role, content: r.message.content,
                 done: r.done, eval_count: r.eval_count };
    },
    async 'ollama-chat-stream'() {
        const parts = [];
        let last;
        for await (const part of await ollama.chat({ model, messages, stream: true })) {
            parts.push(part.message.content);
            last = part;
        }
        return { parts, done: last.done, done_reason: last.done_reason };
    },
    async 'ollama-generate'() {
        const r = await ollama.generate({ model, prompt: text });
        return { model: r.model, response: r.response, done: r.done };
    },
    async 'ollama-generate-stream'() {
        const parts = [];
        let last;
        for await (const part of await ollama.generate({ model, prompt: text, stream: true })) {
            parts.push(part.response);
            last = part;
        }
        return { parts, done: last.done };
    },
    async 'ollama-embed'() {
        const r = await ollama.embed({ model: embedModel, input: [text, 'second'] });
        return { model: r.model, vectors: r.embeddings.length,
                 dimensions: r.embeddings[0].length,
                 norm: Math.round(Math.hypot(...r.embeddings[0]) * 1000) / 1000 };
    },
    async 'openai-models'() {
        const ids = [];
        for await (const m of openai.models.list()) {
            ids.push(`${m.id} ${m.object} ${m.owned_by}`);
        }
        return { models: ids };
    },
    async 'openai-chat'() {
        const r = await openai.chat.completions.create({ model, messages });
        return { object: r.object, model: r.model, role: r.choices[0].message.role,
                 content: r.choices[0].message.content,
                 finish_reason: r.choices[0].finish_reason,
                 completion_tokens: r.usage.completion_tokens };
    },
    async 'openai-chat-stream'() {
        const stream = await openai.chat.completions.create({ model, messages, stream: true });
        const parts = [];
        let finish = null;
        for await (const chunk of stream) {
            const choice = chunk.choices[0];
            if (choice && choice.delta.content) {
                parts.push(choice.delta.content);
            }
            if (choice && choice.finish_reason) {
                finish = choice.finish_reason;
            }
        }
        return { parts, finish_reason: finish };
    },
    async 'openai-embeddings'() {
        // no encoding_format: the client asks for base64 and decodes it
        const r = await openai.embeddings.create({ model: embedModel, input: [text, 'second'] });
        return { object: r.object, vectors: r.data.length,
                 dimensions: r.data[0].embedding.length,
                 norm: Math.round(Math.hypot(...r.data[0].embedding) * 1000) / 1000 };
    },
};

async function main() {
    if (!calls[call]) {
        throw new Error(`unknown call ${call}: ${Object.keys(calls).join(', ')}`);
    }
    let out;
    try {
        out = await calls[call]();
    } catch (err) {
        out = { error: { name: err.constructor.name, status: err.status ?? err.status_code ?? null,
                         message: err.message, type: err.type ?? null } };
    }
    process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
    process.stderr.write(`${err.stack || err}\n`);
    process.exit(1);
});
