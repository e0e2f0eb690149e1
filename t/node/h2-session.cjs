// One HTTP/2 connection, driven from stdin: each line is a request,
// {"id","method","path","headers","body"}, opened at once as a new stream
// of the same session; each finished stream prints one line,
// {"id","status","body","stream"}.  A line {"close":true} ends the session
// and prints {"sessions":N}, the connections made (always 1 unless the
// server broke the first).  t/016-tls.t uses it to show that a stream
// parked in the queue holds up no other stream of its connection.
//
//   NODE_EXTRA_CA_CERTS=ca.pem node --require t/node/example-hosts.cjs \
//       t/node/h2-session.cjs https://api.example.com:PORT
'use strict';

const http2 = require('http2');
const readline = require('readline');

const authority = process.argv[2];
let sessions = 0;
let session;

function connect() {
    sessions++;
    session = http2.connect(authority);
    session.on('error', (err) => {
        process.stdout.write(JSON.stringify({ error: String(err) }) + '\n');
    });
}

function send(req) {
    const headers = { ':method': req.method, ':path': req.path, ...(req.headers || {}) };
    if (req.body !== undefined) {
        headers['content-type'] = 'application/json';
    }
    const stream = session.request(headers, { endStream: req.body === undefined });
    let status = null;
    const chunks = [];
    stream.on('response', (h) => { status = h[':status']; });
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => {
        process.stdout.write(JSON.stringify({ id: req.id, status, stream: stream.id,
                                              body: Buffer.concat(chunks).toString() }) + '\n');
    });
    stream.on('error', (err) => {
        process.stdout.write(JSON.stringify({ id: req.id, error: String(err) }) + '\n');
    });
    if (req.body !== undefined) {
        stream.end(req.body);
    }
}

connect();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const req = JSON.parse(line);
    if (req.close) {
        session.close(() => {
            process.stdout.write(JSON.stringify({ sessions }) + '\n');
        });
        return;
    }
    send(req);
});
