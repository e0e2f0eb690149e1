# Token usage read from the answers as they pass (issue 14): the counts
# in the log variables ($seadragon_prompt_tokens, ..._completion_tokens,
# ..._load_ms, ..._tokens_per_second) agree with the figures the stand-in
# sent (its records' usage_sent), for every generating endpoint, streamed
# or not, cut across reads, broken, aborted; the answer the client gets is
# the same with seadragon_usage on and off.
use lib 't/lib';
use Test::Seadragon;
use Time::HiRes ();

our $http_config = <<'_EOC_';
    seadragon_zone ollama:1m capacity=2;
    seadragon_source api priority=3;
    log_format usage "$http_x_standin_tag p=$seadragon_prompt_tokens c=$seadragon_completion_tokens load=$seadragon_load_ms tps=$seadragon_tokens_per_second";

    upstream ollama {
        server    127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        keepalive 8;
    }
_EOC_

our $config = <<'_EOC_';
    access_log logs/usage.log usage;
    location /api/admin/ { seadragon_admin ollama auth=nginx; }
    location ~ ^/(api|v1)/ {
        seadragon_queue    ollama;
        proxy_pass         http://ollama;
        proxy_http_version 1.1;
        proxy_set_header   Connection "";
        proxy_set_header   Host localhost;
        proxy_buffering    off;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

sub record_of {
    my ($tag) = @_;
    my @r = grep { ($_->{tag} // '') eq $tag } @{ standin_requests() };
    return $r[-1];
}

# the access log's fields of the request tagged so
sub logged {
    my ($tag) = @_;
    my $line;
    wait_until(sub { ($line) = access_log_text('usage.log') =~ /^\Q$tag\E (.*)$/m;
                     defined $line }, "the log line of $tag");
    return $line;
}

# what the log must say, from the figures the stand-in sent: Ollama's own
# (durations in ns), or OpenAI's usage (no times)
sub expected {
    my ($tag) = @_;
    my $u = record_of($tag)->{usage_sent} or return 'no usage_sent';
    if (exists $u->{prompt_tokens}) {
        return "p=$u->{prompt_tokens} c=" . ($u->{completion_tokens} // 0)
            . " load=- tps=-";
    }
    my $c = $u->{eval_count} // 0;
    my $tps = '-';
    if ($u->{eval_duration}) {
        my $h = int(($c * 100_000_000_000 + int($u->{eval_duration} / 2))
                    / $u->{eval_duration});
        $tps = sprintf '%d.%02d', int($h / 100), $h % 100;
    }
    my $load = defined $u->{load_duration} ? int($u->{load_duration} / 1_000_000) : '-';
    return "p=$u->{prompt_eval_count} c=$c load=$load tps=$tps";
}

# one request and what its log line says, checked against the stand-in
sub counted {
    my ($tag, $path, $body, %headers) = @_;
    my $r = request("POST $path", body => $body, timeout => 60,
        headers => { 'X-Standin-Tag' => $tag, 'X-Standin-Delay-Ms' => 0, %headers });
    die "$tag: status $r->{status}\n" unless ($r->{status} // 0) == 200;
    my $got = logged($tag);
    my $want = expected($tag);
    return $got eq $want ? "$tag: $got" : "$tag: logged '$got', the stand-in sent '$want'";
}

our $chat = '{"model":"llama3:70b","messages":[{"role":"user","content":"one two three"}]}';
our $generate = '{"model":"llama3:70b","prompt":"one two three four"}';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a streamed /api/chat counts the figures of its done line: prompt and completion tokens, load time, tokens per second
--- client
    counted('chat', '/api/chat', $chat, 'X-Standin-Tokens' => 5,
            'X-Standin-First-Delay-Ms' => 30, 'X-Standin-Delay-Ms' => 5);
--- client_output_like
^chat: p=3 c=5 load=[1-9]\d* tps=\d+\.\d\d$
--- no_error_log
[error]
[alert]



=== TEST 2: a streamed /api/generate and a whole one ("stream": false) count Ollama's figures
--- client
    join "\n",
        counted('gen-stream', '/api/generate', $generate, 'X-Standin-Tokens' => 7),
        counted('gen-whole', '/api/generate',
                '{"model":"llama3:70b","prompt":"one two","stream":false}',
                'X-Standin-Tokens' => 4),
        counted('chat-whole', '/api/chat',
                '{"model":"llama3:70b","stream":false,"messages":[{"role":"user","content":"a b c d e"}]}',
                'X-Standin-Tokens' => 6);
--- client_output_like
^gen-stream: p=4 c=7 load=\d+ tps=\d+\.\d\d
gen-whole: p=2 c=4 load=\d+ tps=\d+\.\d\d
chat-whole: p=5 c=6 load=\d+ tps=\d+\.\d\d$
--- no_error_log
[error]
[alert]



=== TEST 3: a stream written in pieces of 7 bytes, and of 1 byte, lines and numbers cut anywhere, counts the same
--- timeout: 60
--- client
    join "\n",
        counted('split7', '/api/chat', $chat, 'X-Standin-Tokens' => 6,
                'X-Standin-Split' => 7),
        counted('split1', '/api/generate', $generate, 'X-Standin-Tokens' => 2,
                'X-Standin-Split' => 1);
--- client_output_like
^split7: p=3 c=6 load=\d+ tps=\d+\.\d\d
split1: p=4 c=2 load=\d+ tps=\d+\.\d\d$
--- no_error_log
[error]
[alert]



=== TEST 4: /api/embed counts its prompt_eval_count and load time; /api/embeddings, which reports nothing, logs "-"
--- client
    my $r = request('POST /api/embeddings', body => '{"model":"llama3:70b","prompt":"a b"}',
                    headers => { 'X-Standin-Tag' => 'old' });
    join "\n",
        counted('embed', '/api/embed',
                '{"model":"nomic-embed-text","input":["one two","three"]}',
                'X-Standin-First-Delay-Ms' => 20),
        "old: $r->{status} " . logged('old');
--- client_output_like
^embed: p=3 c=0 load=[1-9]\d* tps=-
old: 200 p=- c=- load=- tps=-$
--- no_error_log
[error]
[alert]



=== TEST 5: /v1/chat/completions: a whole answer and a stream with stream_options.include_usage count OpenAI's usage
--- client
    join "\n",
        counted('v1-whole', '/v1/chat/completions',
                '{"model":"llama3:70b","messages":[{"role":"user","content":"one two"}]}',
                'X-Standin-Tokens' => 4),
        counted('v1-usage', '/v1/chat/completions',
                '{"model":"llama3:70b","stream":true,"stream_options":{"include_usage":true},'
                . '"messages":[{"role":"user","content":"one two three"}]}',
                'X-Standin-Tokens' => 5, 'X-Standin-Split' => 5);
--- client_output
v1-whole: p=2 c=4 load=- tps=-
v1-usage: p=3 c=5 load=- tps=-
--- no_error_log
[error]
[alert]



=== TEST 6: a /v1 stream without include_usage counts its content chunks, one token each (an estimate, with a rate over the stream's time); the final empty chunk and [DONE] are not tokens
--- client
    my $r = request('POST /v1/chat/completions', timeout => 30,
        body => '{"model":"llama3:70b","stream":true,"messages":[{"role":"user","content":"hi"}]}',
        headers => { 'X-Standin-Tag' => 'est', 'X-Standin-Tokens' => 6,
                     'X-Standin-Delay-Ms' => 20 });
    my $events = () = $r->{body} =~ /^data: \{/mg;
    my $sent = record_of('est');
    join "\n", "status $r->{status}, $events events, the stand-in sent $sent->{tokens_sent} tokens"
        . " and no usage: " . (defined $sent->{usage_sent} ? 'no' : 'yes'),
        logged('est');
--- client_output_like
^status 200, 7 events, the stand-in sent 6 tokens and no usage: yes
p=0 c=6 load=- tps=\d+\.\d\d$
--- no_error_log
[error]
[alert]



=== TEST 7: /v1/completions, streamed (choices[].text) and whole, and /v1/embeddings
--- client
    my $r = request('POST /v1/completions', timeout => 30,
        body => '{"model":"llama3:70b","stream":true,"prompt":"one two"}',
        headers => { 'X-Standin-Tag' => 'cmpl-stream', 'X-Standin-Tokens' => 3,
                     'X-Standin-Split' => 3 });
    join "\n",
        "cmpl-stream: $r->{status} " . logged('cmpl-stream'),
        counted('cmpl-whole', '/v1/completions',
                '{"model":"llama3:70b","prompt":"one two three four five"}',
                'X-Standin-Tokens' => 2),
        counted('v1-embed', '/v1/embeddings',
                '{"model":"nomic-embed-text","input":["one two three","four"]}');
--- client_output_like
^cmpl-stream: 200 p=0 c=3 load=- tps=(?:\d+\.\d\d|-)
cmpl-whole: p=5 c=2 load=- tps=-
v1-embed: p=4 c=0 load=- tps=-$
--- no_error_log
[error]
[alert]



=== TEST 8: a stream that breaks midway counts the tokens that passed (an estimate): Ollama closing after 2 tokens, and its mid-stream error line
--- client
    my @out;
    for my $case (['close-mid', '/api/chat', $chat],
                  ['error-mid', '/api/generate', $generate],
                  ['close-mid', '/v1/chat/completions',
                   '{"model":"llama3:70b","stream":true,"messages":[{"role":"user","content":"hi"}]}'])
    {
        my ($fail, $path, $body) = @$case;
        my $tag = "$fail$path";
        my $r = request("POST $path", body => $body, timeout => 30,
            headers => { 'X-Standin-Tag' => $tag, 'X-Standin-Tokens' => 9,
                         'X-Standin-Fail' => $fail, 'X-Standin-Delay-Ms' => 0 });
        push @out, "$tag: sent " . record_of($tag)->{tokens_sent} . ", " . logged($tag);
    }
    join "\n", @out;
--- client_output_like
^close-mid/api/chat: sent 2, p=0 c=2 load=- tps=(?:\d+\.\d\d|-)
error-mid/api/generate: sent 2, p=0 c=2 load=- tps=(?:\d+\.\d\d|-)
close-mid/v1/chat/completions: sent 2, p=0 c=2 load=- tps=(?:\d+\.\d\d|-)$
--- no_error_log
[alert]



=== TEST 9: a client that leaves a stream counts what had passed to it
--- client
    my $h = start_request('POST /api/chat', body => $chat, timeout => 30,
        headers => { 'X-Standin-Tag' => 'left', 'X-Standin-Tokens' => 50,
                     'X-Standin-Pause-After' => 4, 'X-Standin-Delay-Ms' => 0 });
    wait_until(sub { my $r = record_of('left'); $r && $r->{tokens_sent} == 4 },
               'four tokens to be sent');
    # nginx passes on what it reads at once (proxy_buffering off)
    Time::HiRes::sleep(0.3);
    my $r = abort_request($h);
    my $lines = () = $r->{body} =~ /"content":"tok\d+ "/g;
    standin_release();
    my $line = logged('left');
    wait_until(sub { record_of('left')->{aborted} }, 'the stand-in to see the abort');
    "the client got $lines tokens; logged $line";
--- client_output_like
^the client got 4 tokens; logged p=0 c=4 load=- tps=(?:\d+\.\d\d|-)$
--- no_error_log
[alert]



=== TEST 10: a 16 MB text in a stream, cut in 4k reads, is skipped in linear time: counts right, worker alive
--- timeout: 120
--- client
    my $r = request('POST /api/chat', body => $chat, timeout => 110,
        headers => { 'X-Standin-Tag' => 'big', 'X-Standin-Tokens' => 3,
                     'X-Standin-Big-Token' => 16 * 1024 * 1024 });
    my $want = expected('big');
    my $got = logged('big');
    my $after = request('POST /api/chat', body => $chat,
        headers => { 'X-Standin-Tag' => 'after', 'X-Standin-Tokens' => 2 });
    join "\n", "status $r->{status}, " . length($r->{body}) . " bytes",
        ($got eq $want ? "agrees: $got" : "logged '$got', sent '$want'"),
        "after: $after->{status} " . logged('after');
--- client_output_like
^status 200, 1677\d{4} bytes
agrees: p=3 c=3 load=\d+ tps=\d+\.\d\d
after: 200 p=3 c=2 load=\d+ tps=\d+\.\d\d$
--- no_error_log
[alert]
exited on signal



=== TEST 11: seadragon_usage takes on or off, and nginx -t says so
--- http_config eval
$::http_config . "    seadragon_usage maybe;\n"
--- must_die
--- error_log
invalid value "maybe" in "seadragon_usage" directive, it must be "on" or "off"



=== TEST 12: seadragon_usage off: nothing is read, the variables log "-", and the answers are the same bytes as with it on
--- timeout: 60
--- config eval
(my $c = $::config) =~ s/location ~ \^/location ~ ^\/off(\/(?:api|v1)\/.*) {
        seadragon_usage    off;
        rewrite            ^\/off(.*)\$ \$1 break;
        seadragon_queue    ollama;
        proxy_pass         http:\/\/ollama;
        proxy_http_version 1.1;
        proxy_set_header   Connection "";
        proxy_set_header   Host localhost;
        proxy_buffering    off;
    }
    location ~ ^/ or die;
$c
--- client
    # the parts that differ from one answer to the next: times and durations
    sub same { my $b = shift; $b =~ s/"created(?:_at)?":(?:"[^"]*"|\d+)/T/g;
               $b =~ s/"(\w+_duration)":\d+/$1/g; $b =~ s/"id":"[^"]*"/ID/g; $b }
    my @out;
    for my $case (['/api/chat', $chat],
                  ['/v1/chat/completions',
                   '{"model":"llama3:70b","stream":true,"stream_options":{"include_usage":true},'
                   . '"messages":[{"role":"user","content":"hi"}]}'])
    {
        my ($path, $body) = @$case;
        my %r;
        for my $prefix ('', '/off') {
            $r{$prefix} = request("POST $prefix$path", body => $body, timeout => 50,
                headers => { 'X-Standin-Tag' => "$prefix$path", 'X-Standin-Tokens' => 5,
                             'X-Standin-Split' => 4000, 'X-Standin-Big-Token' => 300000,
                             'X-Standin-Delay-Ms' => 0 });
        }
        push @out, "$path: " . $r{''}{status} . ' ' . $r{'/off'}{status} . ' '
            . (same($r{''}{body}) eq same($r{'/off'}{body}) ? 'same bytes' : 'differ')
            . ', ' . length($r{''}{body}) . ' bytes'
            . ", on: " . logged($path) . ", off: " . logged("/off$path");
    }
    join "\n", @out;
--- client_output_like
^/api/chat: 200 200 same bytes, 30\d{4} bytes, on: p=3 c=5 load=\d+ tps=\d+\.\d\d, off: p=- c=- load=- tps=-
/v1/chat/completions: 200 200 same bytes, 30\d{4} bytes, on: p=1 c=5 load=- tps=-, off: p=- c=- load=- tps=-$
--- no_error_log
[error]
[alert]



=== TEST 13: an answer that nginx buffered in a temporary file (proxy_buffering on, sendfile on) is read all the same
--- http_config eval
$::http_config . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_SPILL_PORT sndbuf=4k;
        access_log logs/usage.log usage;
        location /api/ {
            seadragon_queue         ollama;
            proxy_pass              http://ollama;
            proxy_http_version      1.1;
            proxy_set_header        Connection "";
            proxy_set_header        Host localhost;
            proxy_buffers           2 4k;
            proxy_busy_buffers_size 4k;
            sendfile                on;
        }
    }
_EOC_
--- client
    use Socket qw(:all);
    use IO::Handle ();
    # a client that takes nothing for a while: nginx spills the answer to disk
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', 4096)) or die "SO_RCVBUF: $!";
    connect($s, pack_sockaddr_in($ENV{TEST_NGINX_SPILL_PORT}, inet_aton('127.0.0.1')))
        or die "connect: $!";
    $s->autoflush(1);
    my $body = '{"model":"llama3:70b","stream":false,"messages":[{"role":"user","content":"a b"}]}';
    print $s "POST /api/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "X-Standin-Tag: spilled\r\nX-Standin-Tokens: 3\r\nX-Standin-Big-Token: 2000000\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n$body";
    wait_until(sub { error_log_text() =~ /buffered to a temporary file/ }, 'the answer to spill');
    my ($all, $buf) = ('');
    while (sysread($s, $buf, 65536)) { $all .= $buf }
    close $s;
    my $want = expected('spilled');
    my $got = logged('spilled');
    ($all =~ m{^HTTP/1\.1 200} ? 'status 200' : 'no 200') . ', '
        . ($got eq $want ? "agrees: $got" : "logged '$got', sent '$want'");
--- client_output_like
^status 200, agrees: p=2 c=3 load=\d+ tps=\d+\.\d\d$
--- no_error_log
[alert]



=== TEST 14: quotes and backslashes in the text, every escape cut between two reads (pieces of 1 byte), on both APIs
--- timeout: 60
--- client
    my $text = 'say "\\" \\\\" x\\\\\\';
    my $v1 = '{"model":"llama3:70b","stream":true,"messages":[{"role":"user","content":"a b"}]}';
    my $r = request('POST /v1/chat/completions', body => $v1, timeout => 50,
        headers => { 'X-Standin-Tag' => 'esc-v1', 'X-Standin-Tokens' => 3,
                     'X-Standin-Split' => 1, 'X-Standin-Token-Text' => $text,
                     'X-Standin-Delay-Ms' => 0 });
    my ($first) = $r->{body} =~ /^data: (\{.*\})$/m;
    my $escaped = json_decode($first)->{choices}[0]{delta}{content} eq $text
        ? 'escaped' : 'not escaped';
    join "\n",
        counted('esc-chat', '/api/chat', $chat, 'X-Standin-Tokens' => 3,
                'X-Standin-Split' => 1, 'X-Standin-Token-Text' => $text),
        "esc-v1: $r->{status} $escaped " . logged('esc-v1');
--- client_output_like
^esc-chat: p=3 c=3 load=\d+ tps=\d+\.\d\d
esc-v1: 200 escaped p=0 c=3 load=- tps=(?:\d+\.\d\d|-)$
--- no_error_log
[error]
[alert]



=== TEST 15: an answer that is not JSON is passed on untouched; counting stops, with a line in the log, and logs "-"
--- http_config eval
$::http_config . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_JUNK_PORT;
        location / {
            default_type application/x-ndjson;
            return 200 "{\"done\":false}\n{\"done\":tru, not json \"eval_count\":5}\n";
        }
    }
_EOC_
--- config eval
(my $c = $::config) =~ s{proxy_pass         http://ollama;}{proxy_pass         http://127.0.0.1:\$TEST_NGINX_JUNK_PORT;} or die;
$c
--- client
    my $r = request('POST /api/chat', body => $chat, headers => { 'X-Standin-Tag' => 'junk' });
    join "\n", "$r->{status} $r->{body}" . logged('junk');
--- client_output
200 {"done":false}
{"done":tru, not json "eval_count":5}
p=0 c=1 load=- tps=-
--- error_log
seadragon usage: the answer is not the JSON expected, counting stops there
--- no_error_log
[alert]



=== TEST 16: nginx's gzip comes after the reading in the filter chain: a client that takes the stream gzipped gets it so, and the counts are Ollama's
--- config eval
(my $c = $::config) =~ s/(proxy_buffering    off;)/$1\n        gzip on; gzip_types application\/x-ndjson; gzip_min_length 1;/ or die;
$c
--- client
    my $r = request('POST /api/chat', body => $chat, timeout => 30,
        headers => { 'X-Standin-Tag' => 'gz', 'X-Standin-Tokens' => 4,
                     'X-Standin-Delay-Ms' => 0, 'Accept-Encoding' => 'gzip' });
    my $want = expected('gz');
    my $got = logged('gz');
    "$r->{status} " . ($r->{headers}{'content-encoding'} // 'identity') . ', '
        . (substr($r->{body}, 0, 2) eq "\x1f\x8b" ? 'gzip bytes' : 'plain bytes') . ', '
        . ($got eq $want ? "agrees: $got" : "logged '$got', sent '$want'");
--- client_output_like
^200 gzip, gzip bytes, agrees: p=3 c=4 load=\d+ tps=\d+\.\d\d$
--- no_error_log
[error]
[alert]
