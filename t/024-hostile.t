# Hostile and odd input: duplicate keys, huge and deep JSON, invalid UTF-8,
# bodies sent slowly, pipelined requests, HTTP/2, headers at and over the
# maximum size.  Each gets a clear answer, and nothing is lost or stuck.
use lib 't/lib';
use Test::Seadragon;
use IO::Socket::INET ();
use Time::HiRes ();

our $http_config = <<'_EOC_';
    seadragon_zone ollama:1m capacity=1;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source api    priority=3;

    server {
        listen 127.0.0.1:$TEST_NGINX_H2_PORT http2;
        seadragon_json_errors on;
        location /api/ {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host localhost;
            proxy_buffering off;
        }
    }
_EOC_

our $config = <<'_EOC_';
    seadragon_json_errors on;
    client_body_timeout 1s;
    client_max_body_size 16m;
    location /api/admin/ { seadragon_admin ollama auth=nginx; }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host localhost;
        proxy_buffering off;
        add_header X-Model $seadragon_model always;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config) unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});


# curl over HTTP/2 without TLS (prior knowledge); "status body" per URL
sub h2 {
    my @args = @_;
    my $out = `curl -s --http2-prior-knowledge -w '\\n%{http_version} %{http_code}\\n' @args 2>&1`;
    return $out;
}

our $chat = '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}],"stream":false}';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: duplicate keys: the last one counts, as in Go's decoder
--- client
    my $r = request('POST /api/chat', body => '{"model":"nope:1b","model":"llama3:70b","stream":true,"stream":false,"messages":[]}');
    my $s = standin_requests()->[0];
    join " ", $r->{status}, "model=$r->{headers}{'x-model'}", "ollama got $s->{model}",
        ($r->{body} =~ /^\{.*"done":true/s ? 'one object' : 'a stream');
--- client_output: 200 model=llama3:70b ollama got llama3:70b one object



=== TEST 2: a 5 MB object with 100,000 keys is validated and reaches Ollama whole
--- client
    my $body = '{"model":"llama3:70b","stream":false,"messages":[],"options":{'
        . join(",", map { qq("k$_":") . ('v' x 40) . '"' } 1 .. 100_000) . '}}';
    my $r = request('POST /api/chat', body => $body, timeout => 30);
    my $s = standin_requests()->[0];
    join " ", $r->{status}, length($body) > 5_000_000 ? 'large' : 'small',
        scalar(keys %{ $s->{body}{options} });
--- client_output: 200 large 100000



=== TEST 3: nesting: 511 levels pass, 100,000 are refused at once without recursion
--- client
    my $ok = '{"model":"llama3:70b","stream":false,"messages":[],"x":' . ('[' x 510) . (']' x 510) . '}';
    my $deep = '{"x":' . ('[' x 100_000) . (']' x 100_000) . '}';
    my $deep_objects = '{"x":' . ('{"a":' x 100_000) . '1' . ('}' x 100_000) . '}';
    join "\n", said(request('POST /api/chat', body => $ok)) =~ /^(200)/,
        said(request('POST /api/chat', body => $deep)),
        said(request('POST /api/chat', body => $deep_objects)),
        "ollama saw " . standin_stats()->{total};
--- client_output
200
400 {"error":"Invalid JSON: nested too deeply"}
400 {"error":"Invalid JSON: nested too deeply"}
ollama saw 1



=== TEST 4: invalid UTF-8 (a bad byte, an overlong "/", past U+10FFFF), NUL bytes, a BOM, two objects, a string
--- client
    join "\n", (map { said(request('POST /api/chat', body => $_)) }
        qq({"mo\xffdel":"llama3:70b"}),
        qq({"model":"llama3:70b","messages":[],"x":"\xe2\x28\xa1"}),
        qq({"model":"llama3:70b","messages":[],"x":"\xc0\xaf"}),
        qq({"model":"llama3:70b","messages":[],"x":"\xf4\x90\x80\x80"}),
        qq({"model":"llama3:70b",\x00"messages":[]}),
        qq(\xef\xbb\xbf{"model":"llama3:70b"}),
        qq({"model":"llama3:70b"} {"model":"x"}),
        qq("just a string")),
        "valid: " . said(request('POST /api/chat', body => qq({"model":"llama3:70b","messages":[],"stream":false,"x":"\xc3\xa9\xe2\x82\xac\xf0\x9f\x90\x89 \\ud800 \\udc00"}))) =~ s/ .*//r;
--- client_output
400 {"error":"Invalid JSON"}
400 {"error":"Invalid JSON"}
400 {"error":"Invalid JSON"}
400 {"error":"Invalid JSON"}
400 {"error":"Invalid JSON"}
400 {"error":"Invalid JSON"}
400 {"error":"Invalid JSON"}
400 {"error":"Invalid JSON: the request body must be a JSON object"}
valid: 200



=== TEST 5: a body sent too slowly times out before it can take a place in line
--- client
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    print $sock "POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\":";
    my $t0 = Time::HiRes::time();
    local $/;
    my $answer = <$sock> // '';
    my ($status) = $answer =~ m{^HTTP/1\.1 (\d+)};
    my $next = request('POST /api/chat', body => $::chat);
    my $s = admin_stats()->{api};
    join " ", "slow: " . ($status // 'closed'), "next: $next->{status}",
        "ollama saw " . scalar(@{ standin_requests() }),
        "received=$s->{received} aborted=$s->{aborted}{parked} served=$s->{served}";
--- client_output: slow: closed next: 200 ollama saw 1 received=2 aborted=1 served=1
--- error_log
http finalize request: 408



=== TEST 6: pipelined requests on one connection are each queued and answered in order
--- client
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    my $req = sub {
        my ($tag, $extra) = @_;
        "POST /api/chat HTTP/1.1\r\nHost: x\r\nX-Standin-Tag: $tag\r\nContent-Length: "
            . length($::chat) . "\r\n$extra\r\n$::chat";
    };
    print $sock $req->('first', '') . $req->('second', '') . $req->('third', "Connection: close\r\n");
    local $/;
    my $all = <$sock> // '';
    my @statuses = $all =~ m{HTTP/1\.1 (\d+) }g;
    join " ", "@statuses", join(",", map { $_->{tag} } @{ standin_requests() });
--- client_output: 200 200 200 first,second,third



=== TEST 7: HTTP/2: a request is queued, validated and streamed back
--- client
    # (a refusal sent before the body is read is nginx's own business: curl
    # 7.88 sometimes reports the RST_STREAM(NO_ERROR) that follows it as an
    # error, with a plain "return 404" as well)
    my $port = $ENV{TEST_NGINX_H2_PORT};
    my $ok = h2("-H 'X-Standin-Tokens: 3' --data-binary '{\"model\":\"llama3:70b\",\"messages\":[]}' http://127.0.0.1:$port/api/chat");
    my $bad = h2("--data-binary '{\"model\":' http://127.0.0.1:$port/api/chat");
    my @lines = grep { /"done":false/ } split /\n/, $ok;
    join "\n", scalar(@lines) . " tokens, " . ($ok =~ /^2 200$/m ? 'h2 200' : $ok), $bad;
--- client_output
3 tokens, h2 200
{"error":"Invalid JSON"}
2 400



=== TEST 8: HTTP/2: streams of one connection queue by priority, and a cancelled stream leaves the line
--- client
    my $port = $ENV{TEST_NGINX_H2_PORT};
    my $url = "http://127.0.0.1:$port/api/chat";
    my $hold = hold_gate(sub { start_request('POST /api/chat', body => $::chat,
        headers => { 'X-Standin-Tag' => 'hold', 'X-Standin-Hold' => 1 }) });
    # one connection, three streams: api, coding, and one the client
    # cancels (RST_STREAM) once it has parked; Node's http2 client
    my $js = <<'JS';
const http2 = require('http2');
const [port, body] = process.argv.slice(2);
const session = http2.connect('http://127.0.0.1:' + port);
const open = (tag, coding) => {
    const h = { ':method': 'POST', ':path': '/api/chat', 'content-type': 'application/json',
                'x-standin-tag': tag };
    if (coding) h['x-coding'] = '1';
    const req = session.request(h);
    req.end(body);
    req.on('response', (head) => process.stdout.write(tag + ' ' + head[':status'] + '\n'));
    req.on('data', () => {});
    req.on('error', () => {});
    return req;
};
const streams = [open('api1'), open('coding1', true), open('leaver', true)];
process.stdin.once('data', () => streams[2].close(http2.constants.NGHTTP2_CANCEL));
let left = 2;
for (const s of streams.slice(0, 2)) s.on('close', () => { if (--left === 0) session.close(); });
JS
    open my $jsf, '>', servroot() . "/h2.js" or die $!;
    print $jsf $js;
    close $jsf;
    my $pid = open my $node, '|-', 'node', servroot() . "/h2.js", $port, $::chat;
    die "node: $!" unless $pid;
    $node->autoflush(1);
    wait_until(sub { json_decode(request('GET /api/admin/queue')->{body})->{queue_length} == 3 }, 'three streams to park');
    print $node "cancel\n";
    wait_until(sub { error_log_text() =~ /left the line/ }, 'the cancelled stream to leave', 5);
    standin_release();
    close $node;
    wait_request($hold);
    my $s = admin_stats();
    join " ", join(",", map { $_->{tag} } @{ standin_requests() }),
        "aborted=" . ($s->{coding}{aborted}{parked} + $s->{api}{aborted}{parked});
--- client_output: hold,coding1,api1 aborted=1
--- log_level: debug



=== TEST 9: a header just under the limit passes; one over it is a JSON 400
--- client
    my $fits = request('POST /api/chat', body => $::chat, headers => { 'X-Big' => 'a' x 8000 });
    my $over = request('POST /api/chat', body => $::chat, headers => { 'X-Big' => 'a' x 9000 });
    my $many = request('POST /api/chat', body => $::chat,
                       headers => { map { ("X-H$_" => 'b' x 4000) } 1 .. 10 });
    join "\n", $fits->{status}, said($over) . " " . $over->{headers}{'content-type'}, said($many),
        "ollama saw " . scalar(@{ standin_requests() });
--- client_output
200
400 {"error":"bad request: malformed, or its headers are too large"} application/json
400 {"error":"bad request: malformed, or its headers are too large"}
ollama saw 1
