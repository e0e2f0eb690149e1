# Token usage read from the answers as they pass (issue 14): the counts
# in the log variables ($seadragon_prompt_tokens, ..._completion_tokens,
# ..._load_ms, ..._tokens_per_second) agree with the figures the stand-in
# sent (its records' usage_sent), for every generating endpoint, streamed
# or not, cut across reads, broken, aborted; the answer the client gets is
# the same with seadragon_usage on and off.
use lib 't/lib';
use Test::Seadragon;

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
