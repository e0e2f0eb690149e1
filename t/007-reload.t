# nginx -s reload with requests parked and streaming: nothing is lost, the
# order holds across old and new workers, and the zone carries over.
#
# Skipped under valgrind: there the new worker is not woken for the
# listening socket while the old one lives (nginx's own hand-over of the
# socket, not the module), so the new request cannot queue in time and the
# order assertion has nothing to test.
use lib 't/lib';
use Test::Seadragon;

master_on();
workers(1);

run_tests();

__DATA__

=== TEST 1: a reload keeps parked and streaming requests, their order and the zone
--- http_config
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source api    priority=3;
    log_format ids "$http_x_standin_tag $seadragon_queue_id";
--- config
    access_log logs/ids.log ids;
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- timeout: 30
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- client
    # the hold streams two tokens, then pauses until released
    my $hold = chat('hold', 'X-Standin-Tokens' => 4, 'X-Standin-Delay-Ms' => 0,
                    'X-Standin-Pause-After' => 2);
    wait_until(sub { my $r = standin_requests()->[0]; $r && $r->{tokens_sent} == 2 },
               'the hold to stream');
    my $c1 = chat('coding1');
    my $a1 = chat('api1');
    wait_until(sub { my @m = error_log_text() =~ /seadragon queued/g; @m == 3 }, 'two to park');
    nginx_reload();
    my $c2 = chat('coding2');
    wait_until(sub { error_log_text() =~ /seadragon queued #4 at position 2, parked/ },
               'coding2 to park in a new worker, second in line', 60);
    standin_release();
    my @r = wait_all($hold, $c1, $a1, $c2);
    my %id = map { split / / } split /\n/, access_log_text('ids.log');
    join " ", (map { $_->{status} } @r),
        join(",", map { $_->{tag} } @{ standin_requests() }),
        "coding2=#$id{coding2}", "peak=" . standin_stats()->{peak};
--- client_output: 200 200 200 200 hold,coding1,coding2,api1 coding2=#4 peak=1
--- no_error_log
[alert]
