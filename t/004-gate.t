# The gate: dispatch order, capacity within and across workers, and what
# a client leaving does to the line.
use lib 't/lib';
use Test::Seadragon;
use IO::Socket::INET ();

# the zone, the sources, gate.log, and chat($tag) saying "hi" for one token
# (coding3 is a coding tool): the harness's gate_setup()
gate_setup();

run_tests();

__DATA__

=== TEST 1: a burst of mixed sources is served by priority, FIFO within each
--- client
    # the hold keeps the gate until every request of the burst has queued
    my $hold = hold_gate();
    my @burst;
    my $n = 1;
    for my $tag (qw(api1 chat1 coding1 api2 coding2 chat2 coding3 api3 chat3)) {
        push @burst, chat($tag);
        $n++;
        wait_until(sub { queued_count() == $n }, "$tag to queue");
    }
    standin_release();
    my @res = wait_all($hold, @burst);
    die "not all 200: " . join(",", map { $_->{status} } @res)
        if grep { $_->{status} != 200 } @res;
    served_tags() . " peak=" . standin_stats()->{peak};
--- client_output
hold,coding1,coding2,coding3,chat1,chat2,chat3,api1,api2,api3 peak=1



=== TEST 2: capacity 2 runs two generations at once and never three
--- http_config eval
(my $c = $::http_config) =~ s/capacity=\$TEST_NGINX_CAPACITY/capacity=2/;
$c
--- client
    my @h = map { chat("api$_", 'X-Standin-Tokens' => 5, 'X-Standin-Delay-Ms' => 40) } 1 .. 6;
    my @res = wait_all(@h);
    die "not all 200" if grep { $_->{status} != 200 } @res;
    my $s = standin_stats();
    "served=$s->{served} peak=$s->{peak}";
--- client_output: served=6 peak=2



=== TEST 3: capacity 1 runs one generation at a time
--- client
    my @h = map { chat("api$_", 'X-Standin-Tokens' => 5, 'X-Standin-Delay-Ms' => 20) } 1 .. 6;
    wait_all(@h);
    my $s = standin_stats();
    "served=$s->{served} peak=$s->{peak}";
--- client_output: served=6 peak=1



=== TEST 4: a client that leaves while parked leaves the line, and the next is served
--- client
    my $hold = hold_gate(sub { chat('hold', 'X-Standin-Tokens' => 10,
                                   'X-Standin-Delay-Ms' => 50) });
    my $leaver = chat('coding1');
    wait_until(sub { queued_count() == 2 }, 'coding1 to queue');
    my $next = chat('api1');
    wait_until(sub { queued_count() == 3 }, 'api1 to queue');
    abort_request($leaver);
    wait_until(sub { error_log_text() =~ /seadragon release #2, left the line/ },
               'coding1 to leave the line');
    my ($h, $n) = wait_all($hold, $next);
    served_tags() . " $h->{status} $n->{status}";
--- client_output: hold,api1 200 200
--- error_log
client prematurely closed connection



=== TEST 5: a client that leaves while its answer streams frees the slot and stops Ollama
--- client
    my $streaming = chat('api1', 'X-Standin-Tokens' => 200, 'X-Standin-Delay-Ms' => 50);
    wait_until(sub { my $r = standin_requests()->[0]; $r && $r->{tokens_sent} >= 2 },
               'api1 to stream');
    my $next = chat('api2');
    wait_until(sub { queued_count() == 2 }, 'api2 to queue');
    abort_request($streaming);
    my $n = wait_request($next);
    wait_until(sub { standin_requests()->[0]{end} }, 'Ollama to notice');
    my $first = standin_requests()->[0];
    sprintf "%s %s aborted=%s tokens<200=%s", served_tags(), $n->{status},
        ($first->{aborted} ? 'yes' : 'no'),
        ($first->{tokens_sent} < 200 ? 'yes' : 'no');
--- client_output: api1,api2 200 aborted=yes tokens<200=yes



=== TEST 6: an admitted request that fails at Ollama frees its slot at once
--- client
    my $fail = chat('api1', 'X-Standin-Fail' => '500', 'X-Standin-First-Delay-Ms' => 300);
    wait_until(sub { standin_stats()->{active} == 1 }, 'api1 to reach Ollama');
    my $next = chat('api2');
    my ($f, $n) = wait_all($fail, $next);
    served_tags() . " $f->{status} $n->{status}";
--- client_output: api1,api2 500 200



=== TEST 7: the slot is given back at the answer's last byte, not when nginx frees the request (a lingering close)
--- config
    access_log logs/gate.log gate;
    lingering_close always;
    lingering_time 60s;
    lingering_timeout 30s;
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- client
    # api1 asks nginx to close after its answer and then keeps its end open:
    # nginx lingers on the connection for up to 30 s before it frees the
    # request.  api2, queued behind it, must not wait for that.
    my $body = '{"model":"llama3:70b","messages":[],"stream":false}';
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $ENV{TEST_NGINX_SERVER_PORT}) or die $!;
    print $sock "POST /api/chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-Standin-Tag: api1\r\nX-Standin-Hold: 1\r\nContent-Length: " . length($body)
        . "\r\n\r\n$body";
    wait_until(sub { standin_stats()->{active} == 1 }, 'api1 to reach Ollama');
    my $next = chat('api2');
    wait_until(sub { queued_count() == 2 }, 'api2 to queue');
    standin_release();
    local $/;
    my $answer = <$sock>;                # up to nginx's end of the answer
    my $n = wait_request($next);
    # nginx logs a request when it frees it: api2 is logged, api1 is not yet
    wait_until(sub { access_log_text('gate.log') =~ /^api2 /m }, 'api2 to be logged');
    my $lingering = access_log_text('gate.log') =~ /^api1 /m ? 'freed' : 'lingering';
    close $sock;
    wait_until(sub { access_log_text('gate.log') =~ /^api1 /m }, 'api1 to be freed');
    join " ", ($answer =~ m{^HTTP/1\.1 (\d+)})[0], $n->{status}, served_tags(),
        "api2 served while api1 was $lingering";
--- client_output: 200 200 api1,api2 api2 served while api1 was lingering
