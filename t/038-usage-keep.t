# Usage kept: each answer's tokens added up per key (or source), model and
# day in the zone, written to the store in batches, and shown by the admin
# API (GET usage), the metrics and "seadragon-store usage"; all of them
# agree with what the stand-in sent, across workers, restarts and a store
# that refuses writes for a while.
use lib 't/lib';
use Test::Seadragon;
use POSIX ();
use File::Temp ();

if (!-x store_tool_path()) {
    require Test::More;
    Test::More::plan(skip_all => "build/seadragon-store is not built: run make");
}

our $dir = store_init();
sub tool { store_tool(@_) }
our $admin = tool('key create ops --source admin');
our $alice = tool('key create alice --source coding');
our $bob = tool('key create bob@example.org --source coding');
our $carol = tool('key create carol --source coding');
our $dave = tool('key create dave --source coding');
our $erin = tool('key create erin --source coding');

our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=2;
    seadragon_source coding priority=1 key;
    seadragon_source chat   priority=2 if=$http_x_chat;
    seadragon_source api    priority=3;
_EOC_

our $config = <<'_EOC_';
    location /api/admin/ {
        seadragon_admin ollama;
    }
    location = /metrics {
        seadragon_metrics ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
    location /v1/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
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

our $today = POSIX::strftime('%Y-%m-%d', gmtime);
our $yesterday = POSIX::strftime('%Y-%m-%d', gmtime(time - 86400));

# A second store for TEST 6, that the workers (nobody) may read, and write
# only when the test lets them.
our $ro_dir = File::Temp->newdir();
chmod 0755, "$ro_dir" or die $!;
system(store_tool_path(), '--store', "$ro_dir/store", 'init') == 0 or die;
$ENV{TEST_NGINX_RO_STORE} = "$ro_dir/store";
{
    local $ENV{SEADRAGON_STORE} = "$ro_dir/store";
    our $ro_alice = `@{[store_tool_path()]} --store $ro_dir/store key create alice --source coding 2>/dev/null`;
    chomp $ro_alice;
}
chmod 0755, "$ro_dir/store";

# a generation of N tokens with a prompt of P words, by key (or source)
sub generate {
    my (%o) = @_;
    my $words = join ' ', ('w') x ($o{prompt} // 3);
    my $body = $o{chat}
        ? json_encode({ model => $o{model} // 'llama3:70b', stream => $o{stream} ? \1 : \0,
                        messages => [{ role => 'user', content => $words }] })
        : json_encode({ model => $o{model} // 'llama3:70b', stream => $o{stream} ? \1 : \0,
                        prompt => $words });
    my %h = ('X-Standin-Tokens' => $o{tokens} // 4, 'X-Standin-Delay-Ms' => 2);
    $h{Authorization} = "Bearer $o{key}" if $o{key};
    $h{'X-Chat'} = 1 if $o{source_chat};
    $h{'X-Standin-Tag'} = $o{tag} if $o{tag};
    my $r = request('POST ' . ($o{chat} ? '/api/chat' : '/api/generate'),
                    body => $body, headers => \%h);
    die "generate: $r->{status} $r->{body}" unless ($r->{status} // 0) == 200;
    return $r;
}

sub admin {
    my ($what, %opts) = @_;
    my $method = delete $opts{method} // 'GET';
    my $r = request("$method /api/admin/$what",
        headers => { Authorization => "Bearer $admin" }, %opts);
    return $r->{status} == 200 ? json_decode($r->{body}) : $r;
}

# the store's rows as seadragon-store usage prints them (without its header)
sub tool_usage {
    my ($args) = @_;
    my @lines = split /\n/, tool('usage' . ($args ? " $args" : ''));
    my $head = shift @lines;
    die "no header: $head" unless $head =~ /^principal\s+model\s+requests/;
    my %rows;
    for (@lines) {
        my @f = split ' ';
        $rows{"$f[0] $f[1]"} = { requests => $f[2], prompt_tokens => $f[3],
                                 completion_tokens => $f[4] };
    }
    return \%rows;
}


# what the stand-in was sent and answered for the generation requests
sub standin_sums {
    my %sum;
    for my $rec (@{ standin_requests() }) {
        next unless $rec->{path} =~ m{^/api/(generate|chat)$} && ($rec->{status} // 0) == 200;
        my $b = $rec->{body};
        my $words = $1 eq 'chat' ? scalar(split ' ', $b->{messages}[0]{content})
                                 : scalar(split ' ', $b->{prompt});
        $words ||= 1;
        my $who = $rec->{tag} // '?';
        $sum{$who}{requests}++;
        $sum{$who}{prompt_tokens} += $words;
        $sum{$who}{completion_tokens} += $rec->{tokens_sent};
    }
    return \%sum;
}

sub figures {
    my ($h) = @_;
    return join ' ', map { $h->{$_} // 0 } qw(requests prompt_tokens completion_tokens);
}

# tokens of seadragon_tokens_total by source and kind
sub metric_tokens {
    my $text = request('GET /metrics')->{body};
    my %t;
    while ($text =~ /^seadragon_tokens_total\{zone="ollama",source="([^"]+)",model="([^"]+)",kind="(\w+)"\} (\d+)$/mg) {
        $t{$1}{$3} += $4;
    }
    return \%t;
}

# the client code's printed lines, as its return value
sub capture(&) {
    my ($code) = @_;
    my $buf = '';
    open my $fh, '>', \$buf or die $!;
    my $old = select $fh;
    my $ok = eval { $code->(); 1 };
    select $old;
    die $@ unless $ok;
    return $buf;
}

run_tests();

__DATA__

=== TEST 1: a key's answers are counted in GET usage, as the stand-in sent them, and written to the store
--- client
    capture {
        generate(key => $alice, tokens => 5, prompt => 3, tag => 'alice');
        generate(key => $alice, tokens => 2, prompt => 1, chat => 1, tag => 'alice');
        generate(key => $alice, tokens => 7, prompt => 2, stream => 1, tag => 'alice');
        my $sent = standin_sums()->{alice};
        die "the stand-in sent nothing" unless $sent->{completion_tokens} == 14;
        my $u = admin('usage');
        my $a = $u->{principals}{'key:alice'};
        print "admin: ", figures($a), "\n";
        print "model: ", figures($a->{models}{'llama3:70b'}), "\n";
        print "models: ", figures($u->{models}{'llama3:70b'}), "\n";
        print "sent: ", figures($sent), "\n";
        print "days: $u->{from} $u->{to}\n";
        wait_until(sub { admin('usage')->{unwritten} == 0 }, 'the write');
        my $after = admin('usage')->{principals}{'key:alice'};
        print "written: ", figures($after), "\n";
        my $rows = tool_usage();
        print "tool: ", figures($rows->{'key:alice llama3:70b'}), "\n";
        print "generation: ", ($after->{generation_seconds} > 0 ? 'yes' : 'no'), "\n";
        print "principals: ", join(',', sort keys %{ admin('usage')->{principals} }), "\n";
    };
--- client_output_like
\Aadmin: 3 6 14
model: 3 6 14
models: 3 6 14
sent: 3 6 14
days: (\d{4}-\d\d-\d\d) \1
written: 3 6 14
tool: 3 6 14
generation: yes
principals: key:alice\z


=== TEST 2: keys and keyless sources across two workers: admin API, metrics and the tool agree with the stand-in
--- workers: 2
--- client
    capture {
        my @h;
        for my $i (1 .. 24) {
            my %o = $i % 4 == 0 ? (key => $carol, tag => 'carol')
                  : $i % 4 == 1 ? (key => $bob, tag => 'bob')
                  : $i % 4 == 2 ? (source_chat => 1, tag => 'chat')
                  :               (tag => 'api');
            push @h, start_request('POST /api/generate',
                body => json_encode({ model => 'llama3:70b', stream => $i % 2 ? \1 : \0,
                                      prompt => join(' ', ('w') x ($i % 5 + 1)) }),
                headers => { 'X-Standin-Tokens' => $i, 'X-Standin-Delay-Ms' => 0,
                             'X-Standin-Tag' => $o{tag},
                             ($o{key} ? (Authorization => "Bearer $o{key}") : ()),
                             ($o{source_chat} ? ('X-Chat' => 1) : ()) });
        }
        my @r = wait_all(@h);
        die "not all served" if grep { ($_->{status} // 0) != 200 } @r;
        my $sent = standin_sums();
        my $u = admin('usage')->{principals};
        my %who = (carol => 'key:carol', bob => 'key:bob@example.org',
                   chat => 'source:chat', api => 'source:api');
        for my $tag (sort keys %who) {
            print "$tag: ", (figures($u->{$who{$tag}}) eq figures($sent->{$tag})
                             ? 'same' : figures($u->{$who{$tag}}) . ' vs ' . figures($sent->{$tag})), "\n";
        }
        my $t = metric_tokens();
        my %by_source = (coding => [qw(carol bob)], chat => ['chat'], api => ['api']);
        for my $source (sort keys %by_source) {
            my ($p, $c) = (0, 0);
            for (@{ $by_source{$source} }) {
                $p += $sent->{$_}{prompt_tokens};
                $c += $sent->{$_}{completion_tokens};
            }
            print "metrics $source: ", (($t->{$source}{prompt} // -1) == $p
                                        && ($t->{$source}{completion} // -1) == $c
                                        ? 'same' : "$t->{$source}{prompt}/$t->{$source}{completion} vs $p/$c"), "\n";
        }
        wait_until(sub { admin('usage')->{unwritten} == 0 }, 'the writes');
        my $rows = tool_usage();
        for my $tag (sort keys %who) {
            print "tool $tag: ", (figures($rows->{"$who{$tag} llama3:70b"}) eq figures($sent->{$tag})
                                  ? 'same' : 'differs'), "\n";
        }
        my $bob = tool_usage('--key bob@example.org');
        print "tool --key: ", join(',', sort keys %$bob), "\n";
        my $only = admin('usage?key=bob%40example.org')->{principals};
        print "admin key=: ", join(',', sort keys %$only), "\n";
        $only = admin('usage?source=chat')->{principals};
        print "admin source=: ", join(',', sort keys %$only), "\n";
    };
--- client_output
api: same
bob: same
carol: same
chat: same
metrics api: same
metrics chat: same
metrics coding: same
tool api: same
tool bob: same
tool carol: same
tool chat: same
tool --key: key:bob@example.org llama3:70b
admin key=: key:bob@example.org
admin source=: source:chat


=== TEST 3: usage survives nginx -s stop and a new start: the worker writes what is left as it ends
--- client
    capture {
        generate(key => $alice, tokens => 3, prompt => 2, tag => 'alice');
        my $before = admin('usage')->{principals}{'key:alice'};
        # the fast shutdown of nginx -s stop, at once, before the next write
        generate(key => $alice, tokens => 4, prompt => 1, tag => 'alice');
        my $master = nginx_master_pid();
        kill 'TERM', $master;
        Test::Seadragon::reap($master, 10) or die "nginx did not stop";
        $Test::Seadragon::NginxPid = undef;
        my $err = Test::Seadragon::start_nginx();
        die $err if $err;
        my $u = admin('usage');
        my $after = $u->{principals}{'key:alice'};
        print "gained: ", join(' ', map { $after->{$_} - $before->{$_} }
                                   qw(requests prompt_tokens completion_tokens)),
              " unwritten $u->{unwritten}\n";
        print "tool: ", (figures(tool_usage('--key alice')->{'key:alice llama3:70b'}) eq figures($after)
                         ? 'the same' : 'differs'), "\n";
    };
--- client_output
gained: 1 1 4 unwritten 0
tool: the same


=== TEST 4: the total of TEST 1 and TEST 3, today: the day before has nothing, a range has both
--- client
    capture {
        my $day = admin("usage?day=$today")->{principals}{'key:alice'};
        print "today: ", figures($day), "\n";
        my $none = admin("usage?day=$yesterday")->{principals};
        print "yesterday: ", scalar(keys %$none), "\n";
        my $range = admin("usage?from=$yesterday&to=$today");
        print "range: ", figures($range->{principals}{'key:alice'}), " $range->{from} $range->{to}\n";
        print "tool range: ", figures(tool_usage("--from $yesterday --to $today --key alice")->{'key:alice llama3:70b'}), "\n";
        print "tool yesterday: ", scalar(keys %{ tool_usage("--day $yesterday") }), "\n";
        my $y = admin("usage?from=2025-12-01&to=2026-11-30");
        print "366 days: ", (ref $y eq 'HASH' ? 'ok' : $y->{status}), "\n";
    };
--- client_output_like
\Atoday: 5 9 21
yesterday: 0
range: 5 9 21 \d{4}-\d\d-\d\d \d{4}-\d\d-\d\d
tool range: 5 9 21
tool yesterday: 0
366 days: ok\z


=== TEST 5: a reload keeps what the zone has not written, and the old workers write theirs
--- workers: 2
--- client
    capture {
        my $start = admin('usage')->{principals}{'key:bob@example.org'}{requests} // 0;
        generate(key => $bob, tokens => 2, prompt => 1, tag => 'bob') for 1 .. 3;
        nginx_reload();
        generate(key => $bob, tokens => 2, prompt => 1, tag => 'bob') for 1 .. 2;
        # the last request is kept when nginx ends it, which may come a
        # moment after the client has its last byte
        my $u;
        eval { wait_until(sub { $u = admin('usage')->{principals}{'key:bob@example.org'};
                                $u->{requests} - $start >= 5 }, 'the fifth request kept', 10) };
        print "after reload: ", $u->{requests} - $start, " ", $u->{completion_tokens} >= 10 ? 'tokens' : 'no tokens', "\n";
        wait_until(sub { admin('usage')->{unwritten} == 0 }, 'the writes');
        my $rows = tool_usage('--key bob@example.org');
        print "written: ", $rows->{'key:bob@example.org llama3:70b'}{requests} - $start, "\n";
    };
--- client_output
after reload: 5 tokens
written: 5


=== TEST 6: a store the workers cannot write keeps the usage in the zone, nothing lost, and writes it once it can
--- master_on
--- main_config
    user nobody nogroup;
--- http_config
    seadragon_store $TEST_NGINX_RO_STORE;
    seadragon_zone ollama:1m capacity=2;
    seadragon_source coding priority=1 key;
    seadragon_source api    priority=3;
--- client
    capture {
        our $ro_alice;
        my $key = $main::ro_alice;
        my $store = $ENV{TEST_NGINX_RO_STORE};
        # the master gave the files to the workers' user: now they may read only
        chmod 0444, "$store/data.mdb" or die $!;
        for my $i (1 .. 3) {
            my $r = request('POST /api/generate',
                body => '{"model":"llama3:70b","stream":false,"prompt":"a b"}',
                headers => { Authorization => "Bearer $key", 'X-Standin-Tokens' => 3,
                             'X-Standin-Delay-Ms' => 0 });
            die "$r->{status} $r->{body}" unless $r->{status} == 200;
        }
        wait_until(sub { error_log_text() =~ /is read-only for nginx workers/ }, 'a refused write');
        my $admin_key = `@{[store_tool_path()]} --store $store key create ops --source admin 2>/dev/null`;
        chomp $admin_key;
        my $get = sub {
            my $r = request('GET /api/admin/usage', headers => { Authorization => "Bearer $admin_key" });
            die "$r->{status} $r->{body}" unless $r->{status} == 200;
            json_decode($r->{body});
        };
        my $u = $get->();
        print "kept: ", figures($u->{principals}{'key:alice'}), " unwritten $u->{unwritten}\n";
        my $out = `@{[store_tool_path()]} --store $store usage`;
        print "store rows: ", scalar(split /\n/, $out) - 1, "\n";
        chmod 0644, "$store/data.mdb" or die $!;
        wait_until(sub { $get->()->{unwritten} == 0 }, 'the write', 20);
        $u = $get->();
        print "written: ", figures($u->{principals}{'key:alice'}), "\n";
        $out = `@{[store_tool_path()]} --store $store usage --key alice`;
        my @f = split ' ', (split /\n/, $out)[1];
        print "tool: @f[2,3,4]\n";
    };
--- client_output
kept: 3 6 9 unwritten 3
store rows: 0
written: 3 6 9
tool: 3 6 9
--- error_log
is read-only for nginx workers


=== TEST 7: bad queries get a JSON 400 that says what is wrong; nothing changes
--- client
    capture {
        my $before = json_encode(admin('usage'));
        for my $q ('day=2026-02-31', 'day=yesterday', 'from=2026-01-01', 'to=2026-01-01',
                   'from=2026-02-01&to=2026-01-01', 'from=2025-01-01&to=2026-01-02',
                   'day=2026-01-01&from=2026-01-01&to=2026-01-02', 'key=alice&source=api',
                   'key=a%20b', 'source=' . ('s' x 40), 'frob=1', 'day=' . ('9' x 200)) {
            my $r = request("GET /api/admin/usage?$q",
                            headers => { Authorization => "Bearer $admin" });
            my $b = eval { json_decode($r->{body}) } // {};
            print "$r->{status} $r->{headers}{'content-type'} $b->{error}\n";
        }
        print "unchanged: ", (json_encode(admin('usage')) eq $before ? 'yes' : 'no'), "\n";
    };
--- client_output
400 application/json day= is not a date: use YYYY-MM-DD (UTC)
400 application/json day= is not a date: use YYYY-MM-DD (UTC)
400 application/json a range needs both from= and to=
400 application/json a range needs both from= and to=
400 application/json from= is after to=
400 application/json a range has at most 366 days
400 application/json day= and from=/to= do not go together
400 application/json key= and source= do not go together
400 application/json key= is not a key's name
400 application/json source= is not a source's name
400 application/json unknown query parameter: use day=YYYY-MM-DD, or from=YYYY-MM-DD&to=YYYY-MM-DD, and key=NAME or source=NAME
400 application/json a query value is too long
unchanged: yes


=== TEST 8: without an admin key, 401 and nothing of the usage shown; a POST is refused; the usage is unchanged
--- client
    capture {
        my $before = json_encode(admin('usage'));
        my $r = request('GET /api/admin/usage');
        print "$r->{status} ", ($r->{body} =~ /alice/ ? 'shows' : 'hides'), " $r->{headers}{'www-authenticate'}\n";
        $r = request('GET /api/admin/usage', headers => { Authorization => "Bearer $alice" });
        print "$r->{status} ", ($r->{body} =~ /prompt_tokens/ ? 'shows' : 'hides'), "\n";
        $r = request('POST /api/admin/usage', headers => { Authorization => "Bearer $admin" });
        print "$r->{status} $r->{headers}{allow}\n";
        print "unchanged: ", (json_encode(admin('usage')) eq $before ? 'yes' : 'no'), "\n";
        print "stand-in: ", scalar(@{ standin_requests() }), "\n";
    };
--- client_output
401 hides Bearer
403 hides
405 GET, HEAD
unchanged: yes
stand-in: 0



=== TEST 9: embeddings count their prompt tokens under their own model; an OpenAI stream without usage is counted as an estimate
--- client
    capture {
        my $auth = { Authorization => "Bearer $dave", 'X-Standin-Delay-Ms' => 2 };
        my $r = request('POST /api/embed', headers => $auth,
                        body => '{"model":"nomic-embed-text:latest","input":"one two three four"}');
        die "embed: $r->{status}" unless $r->{status} == 200;
        $r = request('POST /v1/chat/completions',
                     headers => { %$auth, 'X-Standin-Tokens' => 5 },
                     body => '{"model":"llama3:70b","stream":true,"messages":[{"role":"user","content":"a b"}]}');
        die "v1: $r->{status}" unless $r->{status} == 200;
        my ($embed) = grep { $_->{path} eq '/api/embed' } @{ standin_requests() };
        my $sent = $embed->{usage_sent}{prompt_eval_count};
        my $u = admin('usage?key=dave');
        my $d = $u->{principals}{'key:dave'};
        my $e = $d->{models}{'nomic-embed-text:latest'};
        my $l = $d->{models}{'llama3:70b'};
        print "embed: $e->{requests} prompt ", ($e->{prompt_tokens} == $sent ? 'as sent' : "$e->{prompt_tokens} vs $sent"),
              " completion $e->{completion_tokens} estimated $e->{estimated}\n";
        print "v1 stream: $l->{requests} completion $l->{completion_tokens} estimated $l->{estimated}\n";
        print "key total: $d->{requests} estimated $d->{estimated}\n";
        print "models: ", join(',', sort keys %{ $u->{models} }), "\n";
        wait_until(sub { admin('usage')->{unwritten} == 0 }, 'the write');
        my $rows = tool_usage('--key dave');
        print "tool: ", join(' ', map { "$_=" . figures($rows->{$_}) } sort keys %$rows), "\n";
    };
--- client_output_like
\Aembed: 1 prompt as sent completion 0 estimated 0
v1 stream: 1 completion 5 estimated 1
key total: 2 estimated 1
models: llama3:70b,nomic-embed-text:latest
tool: key:dave llama3:70b=1 \d+ 5 key:dave nomic-embed-text:latest=1 [1-9]\d* 0\z



=== TEST 10: a client that leaves a stream: what had passed is kept, counted once, and written
--- client
    capture {
        my $h = start_request('POST /api/chat', timeout => 30,
            body => '{"model":"llama3:70b","messages":[{"role":"user","content":"a b"}]}',
            headers => { Authorization => "Bearer $erin", 'X-Standin-Tag' => 'left',
                         'X-Standin-Tokens' => 50, 'X-Standin-Pause-After' => 4,
                         'X-Standin-Delay-Ms' => 0 });
        wait_until(sub { my ($r) = grep { ($_->{tag} // '') eq 'left' } @{ standin_requests() };
                         $r && $r->{tokens_sent} == 4 }, 'four tokens to be sent');
        Time::HiRes::sleep(0.3);
        my $r = abort_request($h);
        my $got = () = $r->{body} =~ /"content":"tok\d+ "/g;
        standin_release();
        wait_until(sub { (admin('usage?key=erin')->{principals}{'key:erin'}{requests} // 0) == 1 },
                   'the request to end');
        wait_until(sub { admin('usage')->{unwritten} == 0 }, 'the write');
        my $e = admin('usage?key=erin')->{principals}{'key:erin'};
        print "client got $got; kept $e->{requests} request, $e->{completion_tokens} completion tokens, estimated $e->{estimated}\n";
        my $row = tool_usage('--key erin')->{'key:erin llama3:70b'};
        print "tool: ", figures($row) eq figures($e) ? 'the same' : 'differs', "\n";
        my $stats = admin('stats')->{sources}{coding}{aborted}{streaming};
        print "aborted streaming: $stats\n";
    };
--- client_output
client got 4; kept 1 request, 4 completion tokens, estimated 1
tool: the same
aborted streaming: 1



=== TEST 11: seadragon_usage off in a location keeps nothing of its answers; another location still keeps its own
--- config
    location /api/admin/ {
        seadragon_admin ollama;
    }
    location /api/ {
        seadragon_queue ollama;
        seadragon_usage off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
    location /v1/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- client
    capture {
        my $before = admin('usage')->{principals}{'source:api'}{requests} // 0;
        generate(tokens => 3, tag => 'off') for 1 .. 2;
        my $r = request('POST /v1/chat/completions',
                        headers => { 'X-Standin-Tokens' => 2 },
                        body => '{"model":"llama3:70b","messages":[{"role":"user","content":"a"}]}');
        die "v1: $r->{status}" unless $r->{status} == 200;
        my $after = admin('usage')->{principals}{'source:api'};
        print "kept: ", $after->{requests} - $before, " request\n";
        print "served: ", scalar(grep { ($_->{status} // 0) == 200 } @{ standin_requests() }), "\n";
    };
--- client_output
kept: 1 request
served: 3



=== TEST 12: seadragon-store usage: bad input exits 2 saying what is wrong; a store that is not there exits 3
--- client
    capture {
        my $tool = store_tool_path();
        for my $args ('--day 2026-02-31', '--from 2026-01-01', '--from 2026-02-01 --to 2026-01-01',
                      '--from 2025-01-01 --to 2026-01-02', '--day 2026-01-01 --to 2026-01-02',
                      '--key alice --source api', "--key 'a b'", '--source ' . ('s' x 40),
                      '--frob 1') {
            my $err = `$tool --store $ENV{TEST_NGINX_STORE} usage $args 2>&1 >/dev/null`;
            my $rc = $? >> 8;
            my ($first) = split /\n/, $err;
            print "$rc $first\n";
        }
        my $err = `$tool --store $ENV{TEST_NGINX_STORE}-missing usage 2>&1 >/dev/null`;
        print $? >> 8, " ", ($err =~ /no such file|No such file/i ? 'no store' : $err), "\n";
    };
--- client_output
2 seadragon-store: usage: --day "2026-02-31" is not a date: use YYYY-MM-DD (UTC)
2 seadragon-store: usage: a range needs both --from and --to
2 seadragon-store: usage: --from is after --to
2 seadragon-store: usage: a range has at most 366 days
2 seadragon-store: usage: --day and --from/--to do not go together
2 seadragon-store: usage: --key and --source do not go together
2 seadragon-store: usage: invalid NAME "a b": expected 1 to 63 letters, digits, "_", "-", "." and "@"
2 seadragon-store: usage: invalid SOURCE "ssssssssssssssssssssssssssssssssssssssss": expected 1 to 31 letters, digits, "_" and "-"
2 seadragon-store: usage: unknown option "--frob"
3 no store



=== TEST 13: without seadragon_store, usage lives in the zone: GET usage shows it, store false, across 2 workers and a reload
--- workers: 2
--- http_config
    seadragon_zone ollama:1m capacity=2;
    seadragon_source chat priority=2 if=$http_x_chat;
    seadragon_source api  priority=3;
--- config
    location /api/admin/ {
        allow 127.0.0.1;
        deny all;
        seadragon_admin ollama auth=nginx;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- client
    capture {
        my $get = sub { json_decode(request("GET /api/admin/usage$_[0]")->{body}) };
        generate(tokens => 3, prompt => 2, tag => 'api') for 1 .. 3;
        generate(tokens => 5, prompt => 1, source_chat => 1, tag => 'chat');
        nginx_reload();
        generate(tokens => 1, prompt => 1, tag => 'api');
        my $u = $get->('');
        my $sent = standin_sums();
        print "store: ", ($u->{store} ? 'true' : 'false'), " unwritten $u->{unwritten}\n";
        for my $who (qw(api chat)) {
            print "$who: ", (figures($u->{principals}{"source:$who"}) eq figures($sent->{$who})
                             ? 'as sent' : figures($u->{principals}{"source:$who"}) . ' vs ' . figures($sent->{$who})), "\n";
        }
        print "yesterday: ", scalar(keys %{ $get->("?day=$yesterday")->{principals} }), "\n";
    };
--- client_output
store: false unwritten 0
api: as sent
chat: as sent
yesterday: 0
