# Health asks Ollama itself and never waits for the gate; metrics are the
# zone's counters in Prometheus' text format, checked with promtool and
# parsed by a real exposition-format parser.
use lib 't/lib';
use Test::Seadragon;

our $http_config = <<'_EOC_';
    seadragon_zone ollama:1m capacity=1;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source api    priority=3;
_EOC_

our $config = <<'_EOC_';
    location = /health {
        seadragon_health ollama /_seadragon/tags;
    }
    location = /_seadragon/tags {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/tags;
        proxy_set_header Host localhost;
        proxy_connect_timeout 5s;
        proxy_read_timeout 5s;
    }
    location = /metrics {
        seadragon_metrics ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

# chat($tag): the harness's, not streamed, one token
chat_defaults(body => '{"model":"llama3:70b","messages":[],"stream":false}',
              'X-Standin-Tokens' => 1);

sub metrics_file {
    my ($text) = @_;
    my $file = servroot() . "/metrics.txt";
    open my $fh, '>', $file or die $!;
    print $fh $text;
    close $fh;
    return $file;
}

# The samples of a histogram, { "name{labels}" => value }.  The npm parser
# below folds a histogram with labels other than "le" into one sample, so
# these are read line by line, once promtool has checked the syntax.
sub histogram_samples {
    my ($text, $name) = @_;
    my %out;
    for (split /\n/, $text) {
        next unless /^(\Q$name\E_(?:bucket|sum|count))\{([^}]*)\} (\S+)$/;
        my ($metric, $labels, $value) = ($1, $2, $3);
        $labels =~ s/"//g;
        $out{"$metric\{$labels\}"} = $value;
    }
    return \%out;
}

# the counters and gauges as a parser sees them: { "name{labels}" => value }
sub parsed_metrics {
    my ($text) = @_;
    my $dir = "$ENV{TEST_NGINX_REPO}/build/node";
    node_modules();                 # t/package.json's, in $dir
    my $file = metrics_file($text);
    my $json = `cd '$dir' && node -e '
        const parse = require("parse-prometheus-text-format");
        const text = require("fs").readFileSync(process.argv[1], "utf8");
        const out = {};
        for (const family of parse(text)) {
            for (const m of family.metrics) {
                const labels = Object.entries(m.labels || {}).map(([k, v]) => k + "=" + v).join(",");
                if (m.value !== undefined)
                    out[family.name + "{" + labels + "}"] = m.value;
                out["type:" + family.name] = family.type;
            }
        }
        console.log(JSON.stringify(out));' '$file'`;
    die "the parser failed on:\n$text" if $?;
    return json_decode($json);
}

run_tests();

__DATA__

=== TEST 1: health asks Ollama and reports the gate and the queue
--- request
GET /health
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"status":"healthy","ollama":\{"status":200,"time":\d+\.\d{3}\},"gate":"open","capacity":1,"processing":0,"queue_length":0\}$
--- client
    my @tags = grep { $_->{path} eq '/api/tags' } @{ standin_requests() };
    scalar @tags;
--- client_output: 1



=== TEST 2: Ollama down: 503 and the reason
--- config eval
(my $c = $::config) =~ s{proxy_pass http://127.0.0.1:\$TEST_NGINX_OLLAMA_PORT/api/tags;}{proxy_pass http://127.0.0.1:\$TEST_NGINX_DEAD_PORT/api/tags;};
$c
--- request
GET /health
--- error_code: 503
--- response_body_like: ^\{"status":"unhealthy","reason":"Ollama is not reachable","ollama":\{"status":502,
--- error_log
connect() failed (111: Connection refused)



=== TEST 3: a hung Ollama ends at the check location's timeout, not later
--- config eval
(my $c = $::config) =~ s{proxy_read_timeout 5s;}{proxy_read_timeout 1s; proxy_set_header X-Standin-Fail stall;};
$c
--- client
    # the stand-in stalls forever: an answer at all is the timeout's doing
    my $r = request('GET /health', timeout => 10);
    join " ", $r->{status}, ($r->{body} =~ /"reason":"Ollama did not answer within \d+ms"/ ? 'reason' : $r->{body});
--- client_output: 503 reason
--- error_log
upstream timed out



=== TEST 4: health never waits for the gate
--- client
    my $hold = hold_gate();
    my $waiting = chat('api1');
    wait_until(sub { error_log_text() =~ /seadragon queued #2/ }, 'api1 to queue');
    my $r = request('GET /health', timeout => 5);
    standin_release();
    wait_all($hold, $waiting);
    "$r->{status} " . ($r->{body} =~ /"processing":1,"queue_length":1\}$/ ? 'sees the gate' : $r->{body});
--- client_output: 200 sees the gate



=== TEST 5: metrics pass promtool and a real parser, with the right values
--- client
    wait_request(chat('api1'));
    wait_request(chat('api2', 'X-Standin-Fail' => '500'));
    wait_request(chat('coding1'));
    request('POST /api/chat', body => 'not json');
    request('GET /health');
    my $r = request('GET /metrics');
    die "status $r->{status}" unless $r->{status} == 200;

    my $file = metrics_file($r->{body});
    my $promtool = `promtool check metrics < '$file' 2>&1`;
    die "promtool: $promtool" if $?;

    my $m = parsed_metrics($r->{body});
    my $h = histogram_samples($r->{body}, 'seadragon_queue_wait_seconds');
    my $z = 'zone=ollama';
    join "\n", "content-type: $r->{headers}{'content-type'}",
        "received api=" . $m->{"seadragon_requests_received_total{$z,source=api}"}
            . " coding=" . $m->{"seadragon_requests_received_total{$z,source=coding}"},
        "served api=" . $m->{"seadragon_requests_served_total{$z,source=api}"},
        "errors api=" . $m->{"seadragon_requests_upstream_errors_total{$z,source=api}"},
        "invalid api=" . $m->{"seadragon_requests_rejected_total{$z,source=api,reason=invalid}"},
        "wait count api=" . $h->{"seadragon_queue_wait_seconds_count{$z,source=api}"}
            . " +Inf=" . $h->{"seadragon_queue_wait_seconds_bucket{$z,source=api,le=+Inf}"}
            . " type=" . $m->{"type:seadragon_queue_wait_seconds"},
        "gate capacity=" . $m->{"seadragon_gate_capacity{$z}"}
            . " busy=" . $m->{"seadragon_gate_busy{$z}"}
            . " open=" . $m->{"seadragon_gate_state{$z,state=open}"},
        "upstream up=" . $m->{"seadragon_upstream_up{$z}"};
--- client_output
content-type: text/plain; version=0.0.4; charset=utf-8
received api=3 coding=1
served api=1
errors api=1
invalid api=1
wait count api=2 +Inf=2 type=HISTOGRAM
gate capacity=1 busy=0 open=1
upstream up=1



=== TEST 6: histogram buckets are cumulative and match the waits
--- client
    my $hold = hold_gate();
    my $waiting = chat('api1');
    wait_until(sub { error_log_text() =~ /seadragon queued #2/ }, 'api1 to queue');
    select undef, undef, undef, 0.6;
    standin_release();
    wait_all($hold, $waiting);
    my $text = request('GET /metrics')->{body};
    my $file = metrics_file($text);
    my $promtool = `promtool check metrics < '$file' 2>&1`;
    die "promtool: $promtool" if $?;
    my $m = histogram_samples($text, 'seadragon_queue_wait_seconds');
    my $b = sub { $m->{"seadragon_queue_wait_seconds_bucket{zone=ollama,source=api,le=$_[0]}"} };
    # the hold went straight in; api1 waited between 0.5 and 2.5 seconds
    join " ", map({ "$_:" . $b->($_) } qw(0.100 0.500 1.000 2.500 +Inf)),
        "sum>=0.6:" . ($m->{"seadragon_queue_wait_seconds_sum{zone=ollama,source=api}"} >= 0.6 ? 'yes' : 'no');
--- client_output: 0.100:1 0.500:1 1.000:2 2.500:2 +Inf:2 sum>=0.6:yes



=== TEST 7: health and metrics take GET only
--- request
POST /metrics
--- error_code: 405
--- response_body chomp
{"error":"method not allowed"}



=== TEST 8: a health check URI must be a URI
--- config
    location = /health { seadragon_health ollama tags; }
--- must_die
--- error_log
invalid check URI "tags": expected the URI of a location that proxies to Ollama's /api/tags



=== TEST 9: usage metrics (tokens by source, model and kind; load time; tokens per second) pass promtool and agree with the stand-in
--- client
    my $gen = sub {
        my ($tag, $tokens) = @_;
        wait_request(start_chat($tag, '{"model":"llama3:70b","messages":[],"stream":false}',
                                'X-Standin-Tokens' => $tokens, 'X-Standin-Delay-Ms' => 5));
    };
    $gen->('api1', 5);
    $gen->('api2', 3);
    $gen->('coding1', 4);
    my $sent = 0;
    $sent += $_->{tokens_sent} for @{ standin_requests() };
    my $r = request('GET /metrics');
    my $file = metrics_file($r->{body});
    my $promtool = `promtool check metrics < '$file' 2>&1`;
    die "promtool: $promtool" if $?;
    my $m = parsed_metrics($r->{body});
    my $h = histogram_samples($r->{body}, 'seadragon_generation_tokens_per_second');
    my $z = 'zone=ollama';
    my $t = sub { $m->{"seadragon_tokens_total{$z,source=$_[0],model=llama3:70b,kind=$_[1]}"} // '-' };
    join "\n", "sent $sent",
        "api prompt=" . $t->('api', 'prompt') . " completion=" . $t->('api', 'completion'),
        "coding prompt=" . $t->('coding', 'prompt') . " completion=" . $t->('coding', 'completion'),
        "types " . $m->{"type:seadragon_tokens_total"} . " "
            . $m->{"type:seadragon_model_load_seconds_total"} . " "
            . $m->{"type:seadragon_generation_tokens_per_second"},
        "load " . (defined $m->{"seadragon_model_load_seconds_total{$z,model=llama3:70b}"} ? 'shown' : 'missing'),
        "tokens/s count=" . $h->{"seadragon_generation_tokens_per_second_count{$z,model=llama3:70b}"}
            . " +Inf=" . $h->{"seadragon_generation_tokens_per_second_bucket{$z,model=llama3:70b,le=+Inf}"}
            . " sum>0=" . ($h->{"seadragon_generation_tokens_per_second_sum{$z,model=llama3:70b}"} > 0 ? 'yes' : 'no'),
        "dropped " . $m->{"seadragon_usage_dropped_total{$z,what=usage}"};
--- client_output
sent 12
api prompt=2 completion=8
coding prompt=1 completion=4
types COUNTER COUNTER HISTOGRAM
load shown
tokens/s count=3 +Inf=3 sum>0=yes
dropped 0
