# Limits of the queue: how many may wait (in the zone, per source) and for
# how long.  Over a limit: 503, Retry-After, and Ollama's own JSON wording.
use lib 't/lib';
use Test::Seadragon;

our $config = <<'_EOC_';
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", $config) unless defined $block->config;
});

# chat($tag): the harness's, for one token at once
chat_defaults('X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0);


run_tests();

__DATA__

=== TEST 1: a full queue answers 503 with Retry-After and Ollama's wording
--- http_config
    seadragon_zone ollama:1m max_queued=2;
--- client
    my $hold = hold_gate();
    my @waiting = (chat('api1'));
    wait_until(sub { queued_count() == 2 }, 'api1 to queue');
    push @waiting, chat('api2');
    wait_until(sub { queued_count() == 3 }, 'api2 to queue');
    my $over = wait_request(chat('api3'));
    standin_release();
    my @rest = wait_all($hold, @waiting);
    join "\n", "$over->{status} retry-after=$over->{headers}{'retry-after'}",
        $over->{headers}{'content-type'}, $over->{body},
        join(",", map { $_->{status} } @rest),
        join(",", map { $_->{tag} } @{ standin_requests() });
--- client_output
503 retry-after=5
application/json
{"error":"server busy, please try again.  maximum pending requests exceeded"}
200,200,200
hold,api1,api2
--- error_log
seadragon queue of zone "ollama" is full for source "default"



=== TEST 2: a source's own limit refuses that source only
--- http_config
    seadragon_zone ollama:1m max_queued=100;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source api    priority=3 max_queued=1;
--- client
    my $hold = hold_gate();
    my $api1 = chat('api1');
    wait_until(sub { queued_count() == 2 }, 'api1 to queue');
    my $api2 = wait_request(chat('api2'));
    my $coding1 = chat('coding1');
    wait_until(sub { queued_count() == 3 }, 'coding1 to queue');   # api2 never queued
    standin_release();
    my @rest = wait_all($hold, $api1, $coding1);
    join " ", $api2->{status}, map({ $_->{status} } @rest),
        join(",", map { $_->{tag} } @{ standin_requests() });
--- client_output: 503 200 200 200 hold,coding1,api1
--- error_log
seadragon queue of zone "ollama" is full for source "api"



=== TEST 3: a request that waits longer than max_wait gets 503 and leaves the line
--- http_config
    seadragon_zone ollama:1m max_wait=500ms;
--- client
    my $hold = hold_gate();
    my $late = wait_request(chat('api1'));
    my $h = release_gate($hold);
    my $after = wait_request(chat('api2'));
    join "\n", "$late->{status} retry-after=$late->{headers}{'retry-after'}",
        $late->{body}, "$h->{status} $after->{status}",
        join(",", map { $_->{tag} } @{ standin_requests() });
--- client_output
503 retry-after=1
{"error":"server busy, please try again.  timed out waiting in the queue"}
200 200
hold,api2
--- error_log eval
qr/seadragon request #2 waited \d+ms in zone "ollama", longer than max_wait/



=== TEST 4: max_wait=0 waits as long as it takes
--- http_config
    seadragon_zone ollama:1m max_wait=0;
--- client
    my $hold = hold_gate(sub { chat('hold', 'X-Standin-Tokens' => 10,
                                   'X-Standin-Delay-Ms' => 100) });
    my $patient = chat('api1');
    my @r = wait_all($hold, $patient);
    join " ", map { $_->{status} } @r;
--- client_output: 200 200



=== TEST 5: a timed-out head lets the one behind it through
--- http_config
    seadragon_zone ollama:1m capacity=1 max_wait=1s;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source api    priority=3;
--- client
    # coding1 times out first in line; api1, queued behind it, is served
    my $hold = hold_gate();
    my $first = chat('coding1');
    wait_until(sub { queued_count() == 2 }, 'coding1 to queue');
    select undef, undef, undef, 0.4;
    my $second = chat('api1');
    wait_until(sub { queued_count() == 3 }, 'api1 to queue');
    my $f = wait_request($first);
    standin_release();
    my @r = wait_all($hold, $second);
    splice @r, 1, 0, $f;
    join " ", (map { $_->{status} } @r), join(",", map { $_->{tag} } @{ standin_requests() });
--- client_output: 200 503 200 hold,api1
