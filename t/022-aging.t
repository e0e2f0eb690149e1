# Aging: a waiting request's effective priority rises with its wait, so a
# low-priority request is served while high-priority traffic never stops.
# Off by default: strict priority starves it for as long as that traffic
# lasts.  Order, not time, is what the blocks assert: the sleeps only make
# sure a request has waited at least its bound.
use lib 't/lib';
use Test::Seadragon;
use Time::HiRes ();

$ENV{TEST_NGINX_AGING} = 'aging=off';

our $http_config = <<'_EOC_';
    seadragon_zone ollama:1m capacity=1 $TEST_NGINX_AGING;
    seadragon_source coding priority=0 if=$http_x_coding;
    seadragon_source api    priority=2;
_EOC_

our $config = <<'_EOC_';
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
    location /api/admin/ { seadragon_admin ollama auth=nginx; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config) unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

# chat($tag): the harness's, not streamed, one token
chat_defaults(body => '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}],"stream":false}',
              'X-Standin-Tokens' => 1);

sub served_tags { join ",", map { $_->{tag} } @{ standin_requests() } }

# The gate is held; api1 queues, then five coding requests; the hold is
# released after api1 has waited more than its two steps of aging.
sub held_burst {
    my $hold = hold_gate('coding0');
    my @h = (chat('api1'));
    wait_until(sub { queued_count() == 2 }, 'api1 to queue');
    Time::HiRes::sleep(0.5);
    for my $i (1 .. 5) {
        push @h, chat("coding$i");
        wait_until(sub { queued_count() == 2 + $i }, "coding$i to queue");
    }
    my $queue = json_decode(request('GET /api/admin/queue')->{body});
    my $effective = join ",", map { "$_->{source}:$_->{priority}>$_->{effective_priority}" }
                              @{ $queue->{entries} };
    standin_release();
    wait_all($hold, @h);
    return (served_tags(), $effective);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: without aging, strict priority: the api request waits for every coding one
--- client
    my ($order, $effective) = held_burst();
    "$order\n$effective";
--- client_output
coding0,coding1,coding2,coding3,coding4,coding5,api1
coding:0>0,coding:0>0,coding:0>0,coding:0>0,coding:0>0,api:2>2



=== TEST 2: with aging=100ms, two steps of waiting take api from 2 to 0, and its arrival wins
--- http_config eval
(my $c = $::http_config) =~ s/\$TEST_NGINX_AGING/aging=100ms/;
$c
--- client
    my ($order, $effective) = held_burst();
    "$order\n$effective";
--- client_output
coding0,api1,coding1,coding2,coding3,coding4,coding5
api:2>0,coding:0>0,coding:0>0,coding:0>0,coding:0>0,coding:0>0



=== TEST 3: aging set on a source applies to it alone; aging=off on a source overrides the zone
--- http_config
    seadragon_zone ollama:1m capacity=1 aging=100ms;
    seadragon_source coding priority=0 if=$http_x_coding;
    seadragon_source chat   priority=2 if=$http_x_chat aging=off;
    seadragon_source api    priority=2;
--- client
    my $hold = hold_gate('coding0');
    my @h = (chat('chat1'));
    wait_until(sub { queued_count() == 2 }, 'chat1 to queue');
    push @h, chat('api1');
    wait_until(sub { queued_count() == 3 }, 'api1 to queue');
    Time::HiRes::sleep(0.5);
    push @h, chat('coding1');
    wait_until(sub { queued_count() == 4 }, 'coding1 to queue');
    standin_release();
    wait_all($hold, @h);
    served_tags();
--- client_output: coding0,api1,coding1,chat1



=== TEST 4: under coding traffic that never stops, an aged api request is let in ahead of it
--- http_config eval
(my $c = $::http_config) =~ s/\$TEST_NGINX_AGING/aging=50ms/;
$c
--- client
    # Six coding requests wait behind a held one, then api1, then six more:
    # whatever the pace of the machine, coding requests are waiting behind
    # api1 when its turn comes.  Each coding request that ends is replaced
    # at once, so the coding traffic never stops.  api1 holds the gate when
    # it reaches Ollama, so the line can be read at that moment.
    my %slow = ('X-Standin-Delay-Ms' => 20, 'X-Standin-Tokens' => 2);
    my @h = (hold_gate('coding0'));
    my $n = 0;
    my $queue = sub {
        push @h, chat(@_);
        wait_until(sub { queued_count() == @h }, "$_[0] to queue");
    };
    $queue->('coding' . ++$n, %slow) for 1 .. 6;
    $queue->('api1', 'X-Standin-Hold' => 1);
    $queue->('coding' . ++$n, %slow) for 1 .. 6;
    Time::HiRes::sleep(0.3);        # api1: at least two steps of aging
    standin_release();
    my %replaced = (coding0 => 1);
    until (grep { ($_->{tag} // '') eq 'api1' } @{ standin_requests() }) {
        for my $r (@{ standin_requests() }) {
            next unless $r->{tag} =~ /^coding/ && $r->{end} && !$replaced{$r->{tag}}++;
            push @h, chat('coding' . ++$n, %slow);
        }
        die "api1 starved: $n coding requests went first" if $n > 500;
        Time::HiRes::sleep(0.005);
    }
    wait_until(sub { standin_stats()->{active} == 1 }, 'the coding request before api1 to end');
    wait_until(sub { queued_count() == @h }, 'every coding request to queue');
    # ids are arrival tickets: coding0 #1, coding1-6 #2-7, api1 #8, coding7-12
    # #9-14, and the replacements after them.  Without aging, #9-14 would all
    # have gone before api1; replacements prove nothing, so they do not count.
    my $line = json_decode(request('GET /api/admin/queue')->{body});
    my $behind = grep { $_->{source} eq 'coding' && $_->{id} >= 9 && $_->{id} <= 14 }
                 @{ $line->{entries} };
    standin_release();
    my @res = wait_all(@h);
    my @tags = map { $_->{tag} } @{ standin_requests() };
    sprintf "api1 let in while coding requests waited: %s; all served: %s",
        ($behind == 6 ? 'yes' : "no ($behind of 6; @tags)"),
        ((grep { $_->{status} != 200 } @res) ? 'no' : 'yes');
--- client_output: api1 let in while coding requests waited: yes; all served: yes
