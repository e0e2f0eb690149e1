# Several Ollama servers behind one gate: an upstream block of two
# stand-ins, a zone whose capacity is their sum (2), and least_conn, so
# that each server runs one generation at a time.  The order is the
# gate's, whichever server answers; a dead server's requests fail over to
# the other as proxy_next_upstream allows, keeping their place and their
# slot.
use lib 't/lib';
use Test::Seadragon;

our $http_config = <<'_EOC_';
    seadragon_zone ollama:1m capacity=2;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source chat   priority=2 if=$http_x_chat;
    seadragon_source api    priority=3;
    log_format gate "$http_x_standin_tag $seadragon_queue_id $status $upstream_addr $upstream_status";

    upstream ollama {
        zone       ollama_servers 64k;
        least_conn;
        server     127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        server     127.0.0.1:$TEST_NGINX_SECOND_PORT;
        keepalive  8;
    }
_EOC_

our $config = <<'_EOC_';
    access_log logs/gate.log gate;
    location /api/ {
        seadragon_queue    ollama;
        proxy_pass         http://ollama;
        proxy_http_version 1.1;
        proxy_set_header   Connection "";
        proxy_set_header   Host localhost;
        proxy_buffering    off;
    }
_EOC_

# The second server: a stand-in of its own, started once for the file.
our $second;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
    $second //= standin_start_another();
    $ENV{TEST_NGINX_SECOND_PORT} = $second;
    standin_reset($second);
});

# chat($tag): the harness's, not streamed, three tokens 5 ms apart
chat_defaults(body => '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}],"stream":false}',
              'X-Standin-Tokens' => 3, 'X-Standin-Delay-Ms' => 5);

# the tags in the order the gate let them through (its debug lines: a
# request admitted on arrival, or later from the line)
sub admitted {
    my %tag;
    for (split /\n/, access_log_text('gate.log')) {
        my ($t, $id) = split / /;
        $tag{$id} = $t;
    }
    my @ids = error_log_text() =~ /seadragon (?:queued #(\d+) at position \d+, admitted|admitted #(\d+) after)/g;
    return join ',', map { $tag{$_} // "#$_" } grep { defined } @ids;
}

# "tag status upstream_addr upstream_status" for the tags given, with the
# two ports named A (the first stand-in) and B (the second, or the dead one)
sub upstreams {
    my ($b) = @_;
    my %line;
    for (split /\n/, access_log_text('gate.log')) {
        my ($t, $id, $status, $rest) = split / /, $_, 4;
        $rest =~ s/127\.0\.0\.1:$ENV{TEST_NGINX_OLLAMA_PORT}\b/A/g;
        $rest =~ s/127\.0\.0\.1:$b\b/B/g;
        $line{$t} = "$t $status $rest";
    }
    return \%line;
}

# holds the gate's two slots, one request at a time
sub hold_both {
    my ($wait) = @_;
    my @h;
    for my $i (1, 2) {
        push @h, chat("hold$i", 'X-Standin-Hold' => 1);
        wait_until(sub { $wait->($i) }, "hold$i to reach a server");
    }
    return @h;
}

# queues a burst, each one in line before the next
sub burst {
    my @h;
    my $n = queued_count();
    for my $tag (@_) {
        push @h, chat($tag);
        $n++;
        wait_until(sub { queued_count() == $n }, "$tag to queue");
    }
    return @h;
}

our @burst = qw(api1 chat1 coding1 api2 coding2 chat2 coding3 api3 chat3);
our $order = 'hold1,hold2,coding1,coding2,coding3,chat1,chat2,chat3,api1,api2,api3';

run_tests();

__DATA__

=== TEST 1: two servers, capacity 2: one generation on each at a time, in the gate's order
--- client
    my @holds = hold_both(sub {
        my ($i) = @_;
        standin_stats()->{active} + standin_stats($second)->{active} == $i });
    my $each = standin_stats()->{active} . '+' . standin_stats($second)->{active};
    my @h = burst(@burst);
    my $waiting = standin_stats()->{total} + standin_stats($second)->{total};
    standin_release();
    standin_release($second);
    my @res = wait_all(@holds, @h);
    my @bad = grep { $_->{status} != 200 } @res;
    die scalar(@bad) . " requests failed" if @bad;
    my ($a, $b) = (standin_stats(), standin_stats($second));
    join "\n", "holds on each server: $each; reached a server while they held: $waiting",
        "admitted: " . admitted(),
        "peaks: $a->{peak}+$b->{peak}",
        "served: " . ($a->{served} + $b->{served}) . ", by each: "
            . ($a->{served} > 0 && $b->{served} > 0 ? 'yes' : "$a->{served}+$b->{served}");
--- client_output eval
"holds on each server: 1+1; reached a server while they held: 2
admitted: $::order
peaks: 1+1
served: 11, by each: yes"



=== TEST 2: least_conn: while one server runs a long generation, the short ones all go to the other
--- client
    my $hold = chat('hold', 'X-Standin-Hold' => 1);
    wait_until(sub { standin_stats()->{active} + standin_stats($second)->{active} == 1 }, 'the hold');
    my ($busy, $free) = standin_stats()->{active} ? (undef, $second) : ($second, undef);
    my @short;
    for my $i (1 .. 4) {
        push @short, chat("api$i");
        wait_request($short[-1]);
    }
    my ($b, $f) = (standin_stats($busy), standin_stats($free));
    standin_release($busy);
    my @res = wait_all($hold, @short);
    die "not all 200" if grep { $_->{status} != 200 } @res;
    "the busy one: peak $b->{peak}, total $b->{total}; the other: served $f->{served}";
--- client_output: the busy one: peak 1, total 1; the other: served 4



=== TEST 3: a dead server: its first request fails over to the live one in its place, holding its slot; no request is lost and no more than 2 run
--- http_config eval
# nginx leaves a failed server out for fail_timeout; 60 s outlasts the block
(my $c = $::http_config) =~ s/\$TEST_NGINX_SECOND_PORT;/\$TEST_NGINX_DEAD_PORT fail_timeout=60s;/
    or die "no second server";
$c
--- client
    my @holds = hold_both(sub { standin_stats()->{active} == $_[0] });
    my $held = standin_stats()->{active};
    my @h = burst(@burst);
    my $reached = standin_stats()->{total};
    standin_release();
    my @res = wait_all(@holds, @h);
    my @bad = grep { $_->{status} != 200 } @res;
    die scalar(@bad) . " requests failed: " . join(',', map { $_->{status} // $_->{error} } @bad) if @bad;
    my $u = upstreams($ENV{TEST_NGINX_DEAD_PORT});
    my @over = grep { / B, A / } values %$u;
    my $a = standin_stats();
    join "\n", "both holds on the live server: $held; reached it while they held: $reached",
        "admitted: " . admitted(),
        "failed over: " . join(' | ', sort @over),
        "the others: " . (grep({ !/ B, A / && !/ 200 A 200$/ } values %$u) ? 'not all on A' : 'on A'),
        "served: $a->{served}, peak $a->{peak}";
--- client_output_like eval
qr/^both holds on the live server: 2; reached it while they held: 2
admitted: \Q$::order\E
failed over: hold[12] 200 B, A 502, 200
the others: on A
served: 11, peak 2$/
--- error_log eval
qr/connect\(\) failed \(111: Connection refused\) while connecting to upstream.*upstream: "http:\/\/127\.0\.0\.1:\d+\/api\/chat"/



=== TEST 4: a dead server that is never marked down: every request routed to it fails over, and the order and the capacity hold
--- http_config eval
(my $c = $::http_config) =~ s/server     127.0.0.1:\$TEST_NGINX_SECOND_PORT;/server     127.0.0.1:\$TEST_NGINX_DEAD_PORT max_fails=0;/
    or die "no second server";
$c
--- client
    my @holds = hold_both(sub { standin_stats()->{active} == $_[0] });
    my @h = burst(@burst);
    standin_release();
    my @res = wait_all(@holds, @h);
    my @bad = grep { $_->{status} != 200 } @res;
    die scalar(@bad) . " requests failed" if @bad;
    my $u = upstreams($ENV{TEST_NGINX_DEAD_PORT});
    my @over = grep { / B, A 502, 200$/ } values %$u;
    my $a = standin_stats();
    join "\n", "admitted: " . admitted(),
        "failed over: " . (@over >= 2 ? 'several' : scalar @over),
        "served: $a->{served}, peak $a->{peak}";
--- client_output eval
"admitted: $::order
failed over: several
served: 11, peak 2"



=== TEST 5: with two workers the servers' connection counts are shared (zone): still one generation on each
--- workers: 2
--- timeout: 30
--- http_config eval
$::http_config . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        access_log logs/gate.log gate;
        location /api/ {
            seadragon_queue    ollama;
            proxy_pass         http://ollama;
            proxy_http_version 1.1;
            proxy_set_header   Connection "";
            proxy_set_header   Host localhost;
            proxy_buffering    off;
        }
    }
_EOC_
--- client
    # reuseport spreads the connections over both workers
    my @h = map {
        start_request('POST /api/chat', port => $ENV{TEST_NGINX_REUSEPORT_PORT},
            body => '{"model":"llama3:70b","messages":[],"stream":false}',
            headers => { 'X-Standin-Tag' => "api$_", 'X-Standin-Tokens' => 4,
                         'X-Standin-Delay-Ms' => 10 })
    } 1 .. 24;
    my @res = wait_all(@h);
    my @bad = grep { $_->{status} != 200 } @res;
    die scalar(@bad) . " requests failed" if @bad;
    my ($a, $b) = (standin_stats(), standin_stats($second));
    "served: " . ($a->{served} + $b->{served}) . ", peaks: $a->{peak}+$b->{peak}";
--- client_output
served: 24, peaks: 1+1
