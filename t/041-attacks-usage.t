# Attacks on token usage and the limits per key (issue 14), as strangers
# and hostile clients would make them: forged token counts, hostile model
# names in the metrics, the admin API and the tool's output, the admin
# endpoints without a credential or cross-site, limits raced by parallel
# clients over 2 workers, limits taken away and set again, bad limit
# values, yesterday's usage, a worker killed mid-stream and the zone's
# table of rows filled.  Each block checks the state afterwards: usage,
# limits, counters, what the stand-in received, the workers.
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
our $ops = tool('key create ops --source admin');

workers(2);

our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=4 max_queued=60 tick=50ms;
    seadragon_source chat priority=1 key;
    seadragon_source open priority=2;

    # reuseport spreads connections over the workers
    server {
        listen 127.0.0.1:$TEST_NGINX_SPREAD_PORT reuseport;
        location / {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
            proxy_set_header Host localhost;
            proxy_buffering off;
            add_header X-Pid $pid always;
        }
    }

    # an engine that answers any model, as llama-server does
    server {
        listen 127.0.0.1:$TEST_NGINX_ANY_PORT;
        location / {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_ENGINE_PORT;
            proxy_buffering off;
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_ENGINE_PORT;
        location / {
            default_type application/json;
            return 200 '{"model":"m","created_at":"2026-12-01T00:00:00Z","message":{"role":"assistant","content":"hi"},"done":true,"total_duration":2000000,"load_duration":0,"prompt_eval_count":3,"prompt_eval_duration":1000000,"eval_count":5,"eval_duration":1000000}';
        }
    }
_EOC_

our $config = <<'_EOC_';
    location /admin/ { seadragon_admin ollama; }
    location = /metrics { seadragon_metrics ollama; }
    location / {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
        add_header X-Pid $pid always;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config) unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

our $today = POSIX::strftime('%Y-%m-%d', gmtime);
our $yesterday = POSIX::strftime('%Y-%m-%d', gmtime(time - 86400));

sub chat_body {
    my ($model, %more) = @_;
    return json_encode({ model => $model, stream => \0,
                         messages => [{ role => 'user', content => 'hi there' }], %more });
}

# a request of a key (undef: none); %h: more headers, port and body
sub call {
    my ($path, $key, %h) = @_;
    my $port = delete $h{port};
    my $body = delete $h{body} // chat_body('llama3:70b');
    return request("POST $path", body => $body,
        ($port ? (port => $port) : ()),
        headers => { ($key ? (Authorization => "Bearer $key") : ()),
                     'X-Standin-Tokens' => 2, 'X-Standin-Delay-Ms' => 0, %h });
}

sub start_call {
    my ($path, $key, %h) = @_;
    my $port = delete $h{port};
    my $body = delete $h{body} // chat_body('llama3:70b');
    return start_request("POST $path", body => $body,
        ($port ? (port => $port) : ()),
        headers => { ($key ? (Authorization => "Bearer $key") : ()),
                     'X-Standin-Tokens' => 2, 'X-Standin-Delay-Ms' => 0, %h });
}

sub admin {
    my ($what, %opts) = @_;
    my $method = delete $opts{method} // 'GET';
    my $h = delete $opts{headers} // {};
    return request("$method /admin/$what",
        headers => { Authorization => "Bearer $ops", %$h }, %opts);
}

sub stats { json_decode(admin('stats')->{body})->{sources} }
sub queue { json_decode(admin('queue')->{body}) }
sub usage { json_decode(admin('usage' . ($_[0] // ''))->{body}) }

# received = served + errors + rejected + aborted, for every source
sub balanced {
    my $s = stats();
    my @bad;
    for my $name (sort keys %$s) {
        my $c = $s->{$name};
        my $sum = $c->{served} + $c->{upstream_errors};
        $sum += $_ for values %{ $c->{rejected} };
        $sum += $_ for values %{ $c->{aborted} };
        push @bad, "$name $c->{received} != $sum" if $c->{received} != $sum;
    }
    return @bad ? join(', ', @bad) : 'yes';
}

# the figures of a principal (and model) in GET usage
sub figures {
    my ($u, $principal, $model) = @_;
    my $p = $u->{principals}{$principal} or return 'none';
    my $f = defined $model ? $p->{models}{$model} : $p;
    return 'none' unless $f;
    return "requests $f->{requests}, prompt $f->{prompt_tokens}, "
         . "completion $f->{completion_tokens}, estimated $f->{estimated}";
}

sub summary {
    my ($r) = @_;
    my $retry = $r->{headers}{'retry-after'} // '-';
    return "$r->{status} retry=$retry" . ($r->{status} == 200 ? '' : " $r->{body}");
}

sub got { join(',', map { $_->{tag} // '-' } @{ standin_requests() }) || 'nothing' }

sub listed {
    my ($name) = @_;
    my ($line) = grep { /^\Q$name\E\t/ } split /\n/, tool('key list');
    my @f = split /\t/, $line // '';
    return join ' ', @f[5 .. 7];
}

# runs the tool; status, stdout and stderr
sub sd {
    my ($args) = @_;
    my $tool = store_tool_path();
    my $out = `'$tool' --store '$ENV{TEST_NGINX_STORE}' $args 2>'$dir/sd.err'`;
    my $status = $? >> 8;
    open my $fh, '<', "$dir/sd.err";
    my $err = do { local $/; <$fh> };
    return { status => $status, out => $out, err => $err };
}

# the tool's usage rows once they match: waits for the gateway's write
sub written {
    my ($args, $re) = @_;
    my $r;
    eval { wait_until(sub { $r = sd("usage $args"); $r->{out} =~ $re }, 'the usage to be written'); 1 }
        or die "the tool never showed it: exit $r->{status}, $r->{err}, out: $r->{out}\n";
    return $r->{out};
}

sub promtool_ok {
    my ($text) = @_;
    my $file = "$dir/metrics.txt";
    open my $fh, '>:raw', $file or die $!;
    print $fh $text;
    close $fh;
    my $out = `promtool check metrics < '$file' 2>&1`;
    return "promtool: $out" if $?;
    # Prometheus refuses a label value that is not UTF-8
    return utf8::decode(my $copy = $text) ? 'promtool: ok' : 'promtool: ok, but not UTF-8';
}

# a usage record, as the gateway writes them (store_usage.c), on a day
sub usage_load {
    my ($day, $principal, $model, $prompt, $completion) = @_;
    my $input = "$dir/load";
    open my $fh, '>', $input or die $!;
    print $fh "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n";
    print $fh ' ', unpack('H*', pack('N', $day) . $principal . "\0" . $model), "\n ",
        unpack('H*', pack('V V Q< Q< Q< Q< Q< Q< Q<', 1, 0, 1, $prompt,
                          $completion, 0, 0, 0, 0)), "\n";
    print $fh "DATA=END\n";
    close $fh;
    system("mdb_load -s usage -f '$input' '$ENV{TEST_NGINX_STORE}'") == 0
        or die "mdb_load failed";
}

# A second store for TEST 17, that the workers (nobody) may read, and write
# only when the test lets them.
our $ro_dir = File::Temp->newdir();
chmod 0755, "$ro_dir" or die $!;
system(store_tool_path(), '--store', "$ro_dir/store", 'init') == 0 or die;
$ENV{TEST_NGINX_RO_STORE} = "$ro_dir/store";
our $ro_seedy = `@{[store_tool_path()]} --store $ro_dir/store key create seedy --source chat 2>/dev/null`;
chomp $ro_seedy;
chmod 0755, "$ro_dir/store";

# A store for TEST 20 as one from before usage was counted: no "usage"
# database.
our $old_dir = File::Temp->newdir();
{
    my $tool = store_tool_path();
    system($tool, '--store', "$old_dir/new", 'init') == 0 or die;
    my $dump = `mdb_dump -a '$old_dir/new'`;
    die 'mdb_dump' if $?;
    my $i = 0;
    # TEST 20's and TEST 21's
    for my $store ("$old_dir/store", "$old_dir/store2") {
        mkdir $store or die $!;
        # one database a load: this mdb_load stops after an empty one's end
        for my $section (split /(?=^VERSION=)/m, $dump) {
            next if $section =~ /^database=usage$/m;
            my $file = "$old_dir/section" . $i++;
            open my $fh, '>', $file or die $!;
            print $fh $section;
            close $fh;
            system("mdb_load -f '$file' '$store' 2>/dev/null") == 0 or die 'mdb_load';
        }
    }
    $ENV{TEST_NGINX_OLD_STORE} = "$old_dir/store";
    $ENV{TEST_NGINX_OLD_STORE2} = "$old_dir/store2";
}

run_tests();

__DATA__

=== TEST 1: forged counts: a model that writes Ollama's or OpenAI's figures in its text, and a request body with its own, change nothing of what is counted
--- client
    my $key = tool('key create forger --source chat --tokens-per-day 1000');
    my $fake = '","done":true,"prompt_eval_count":99999,"eval_count":99999,"eval_duration":1}'
             . "\n" . '{"done":true,"eval_count":77777,"usage":{"prompt_tokens":5555,"completion_tokens":5555}}';
    my @r;
    # a native stream, the line that carries the text cut in pieces of 7 bytes
    push @r, call('/api/chat', $key, 'X-Standin-Tag' => 'native', 'X-Standin-Token-Text' => $fake,
                  'X-Standin-Split' => 7, 'X-Standin-Tokens' => 3,
                  body => json_encode({ model => 'llama3:70b', messages => [{ role => 'user', content => 'hi there' }],
                                        eval_count => 99999, prompt_eval_count => 99999 }));
    # a whole answer with a body that brings its own usage
    push @r, call('/api/generate', $key, 'X-Standin-Tag' => 'whole', 'X-Standin-Token-Text' => $fake,
                  body => json_encode({ model => 'llama3:70b', prompt => 'hi there', stream => \0,
                                        usage => { prompt_tokens => 5555, completion_tokens => 5555 } }));
    # an OpenAI stream without include_usage: its chunks are counted
    push @r, call('/v1/chat/completions', $key, 'X-Standin-Tag' => 'sse', 'X-Standin-Token-Text' => $fake,
                  'X-Standin-Tokens' => 3,
                  body => json_encode({ model => 'llama3:70b', stream => \1,
                                        messages => [{ role => 'user', content => 'hi there' }] }));
    my ($prompt, $completion) = (0, 0);
    for (@{ standin_requests() }) {
        my $u = $_->{usage_sent};
        if ($u) { $prompt += $u->{prompt_eval_count}; $completion += $u->{eval_count} }
        else { $completion += $_->{tokens_sent} }
    }
    my $u = usage();
    join "\n", (map { summary($_) } @r), 'stand-in got: ' . got(),
        "the stand-in sent: prompt $prompt, completion $completion",
        'usage: ' . figures($u, 'key:forger'),
        'tokens counted for the limit: ' . (call('/api/chat', $key)->{status} == 200 ? 'under 1000' : 'over');
--- client_output
200 retry=-
200 retry=-
200 retry=-
stand-in got: native,whole,sse
the stand-in sent: prompt 4, completion 8
usage: requests 3, prompt 4, completion 8, estimated 1
tokens counted for the limit: under 1000



=== TEST 2: hostile model names (quote, backslash, newline, tab, CR, NUL, a forged row) behind an engine that takes any model: the metrics pass promtool, GET usage shows the name as sent, the tool prints one row of 8 fields for it, and the usage of others is still written
--- client
    my $key = tool('key create mallory --source chat');
    my $plain = tool('key create plain --source chat');
    # 55 bytes: whole in the zone's rows (64)
    my $evil = "q\"b\\\n\t\r\x00\nkey:alice\tllama3:70b\t9999\t9999\t9\t1.000\t0.000\t0";
    my $any = $ENV{TEST_NGINX_ANY_PORT};
    my @out = (summary(call('/api/chat', $key, port => $any, body => chat_body($evil))));
    push @out, summary(call('/api/chat', $plain, port => $any, body => chat_body('llama3:70b')));
    my $m = request('GET /metrics')->{body};
    push @out, promtool_ok($m);
    my $u = usage();
    push @out, 'GET usage: ' . figures($u, 'key:mallory', $evil);
    push @out, 'GET usage models: ' . join(',', map { $_ eq $evil ? 'the name as sent' : 'another' }
                                               keys %{ $u->{principals}{'key:mallory'}{models} });
    push @out, 'the other key written: ' . (written('--key plain', qr/key:plain/) =~ /\tllama3:70b\t1\t3\t5\t/ ? 'yes' : 'no');
    my $rows = written('--key mallory', qr/mallory/);
    my @lines = split /\n/, $rows, -1;
    pop @lines if @lines && $lines[-1] eq '';
    push @out, 'tool lines: ' . scalar(@lines);
    push @out, 'tool fields: ' . join(',', map { scalar(my @f = split /\t/, $_, -1) } @lines);
    push @out, 'tool shows alice: ' . (grep({ /^key:alice/ } @lines) ? 'yes' : 'no');
    push @out, 'no NUL in its output: ' . ($rows =~ /\x00/ ? 'no' : 'yes');
    push @out, 'GET usage after the write: ' . figures(usage(), 'key:mallory', $evil)
        . ', unwritten ' . usage()->{unwritten};
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
200 retry=-
200 retry=-
promtool: ok
GET usage: requests 1, prompt 3, completion 5, estimated 0
GET usage models: the name as sent
the other key written: yes
tool lines: 2
tool fields: 8,8
tool shows alice: no
no NUL in its output: yes
GET usage after the write: requests 1, prompt 3, completion 5, estimated 0, unwritten 0
stand-in got: nothing
--- no_error_log
[alert]
[crit]
writing the usage



=== TEST 3: a model name whose 64th byte is inside a UTF-8 character, behind an engine that takes any model: the metrics stay UTF-8 (promtool), GET usage and the tool too
--- client
    my $key = tool('key create utf --source chat');
    my $model = ('m' x 63) . "\x{e9}t\x{e9}";     # é at bytes 64 and 65
    my $r = call('/api/chat', $key, port => $ENV{TEST_NGINX_ANY_PORT}, body => chat_body($model));
    my @out = (summary($r));
    push @out, promtool_ok(request('GET /metrics')->{body});
    my $g = admin('usage?key=utf');
    my $u = eval { json_decode($g->{body}) };
    push @out, "GET usage: $g->{status} " . ($u ? 'JSON' : 'not JSON');
    my ($name) = keys %{ $u->{principals}{'key:utf'}{models} // {} };
    push @out, 'its model: ' . (defined $name && $name eq 'm' x 63 ? "the first 63 bytes" : 'cut inside a character');
    my $rows = written('--key utf', qr/key:utf/);
    push @out, 'tool output UTF-8: ' . (utf8::decode(my $copy = $rows) ? 'yes' : 'no');
    join "\n", @out;
--- client_output
200 retry=-
promtool: ok
GET usage: 200 JSON
its model: the first 63 bytes
tool output UTF-8: yes



=== TEST 4: GET usage and PATCH keys/NAME without an admin credential, with a client's key, with the key in the URL or cross-site with the admin key: refused, nothing shown, the limits unchanged
--- client
    my $key = tool('key create victim --source chat --rpm 5');
    call('/api/chat', $key, 'X-Standin-Tag' => 'used');
    my @out;
    my @tries = (
        ['no key', {}],
        ['a client key', { Authorization => "Bearer $key" }],
        ['a bogus key', { Authorization => "Bearer sd_bogus" }],
        ['cross-site', { Authorization => "Bearer $ops", 'Sec-Fetch-Site' => 'cross-site',
                         Origin => 'https://evil.example' }],
        ['other origin', { Authorization => "Bearer $ops", Origin => 'https://evil.example' }],
    );
    for my $t (@tries) {
        my ($what, $h) = @$t;
        my $p = request('PATCH /admin/keys/victim', body => '{"rpm":null}', headers => $h);
        push @out, "PATCH $what: $p->{status} $p->{body}";
    }
    for my $t (@tries[0 .. 2]) {
        my ($what, $h) = @$t;
        my $g = request('GET /admin/usage', headers => $h);
        push @out, "GET usage $what: $g->{status} " . ($g->{body} =~ /victim/ ? 'shows the usage' : 'shows nothing');
    }
    my $g = request("GET /admin/usage?key=$ops");
    push @out, "GET usage with ?key=: $g->{status}";
    push @out, 'limits: ' . listed('victim');
    push @out, 'usage: ' . figures(usage(), 'key:victim');
    join "\n", @out;
--- client_output
PATCH no key: 401 {"error":"admin key required"}
PATCH a client key: 403 {"error":"not an admin key"}
PATCH a bogus key: 401 {"error":"invalid admin key"}
PATCH cross-site: 403 {"error":"cross-site admin requests are refused: use the admin page of this origin, or a client that is not a browser"}
PATCH other origin: 403 {"error":"cross-site admin requests are refused: use the admin page of this origin, or a client that is not a browser"}
GET usage no key: 401 shows nothing
GET usage a client key: 403 shows nothing
GET usage a bogus key: 401 shows nothing
GET usage with ?key=: 401
limits: 5 - -
usage: requests 1, prompt 2, completion 2, estimated 0



=== TEST 5: a key's limits taken away and set again the same day: the tokens it used meanwhile still count
--- client
    my $key = tool('key create lapse --source chat --rpm 1000');
    my @out = (summary(call('/api/chat', $key, 'X-Standin-Tag' => 'a1', 'X-Standin-Tokens' => 8)));
    tool('key set lapse --rpm none');
    push @out, map { summary(call('/api/chat', $key, 'X-Standin-Tag' => "b$_", 'X-Standin-Tokens' => 8)) } 1 .. 2;
    written('--key lapse', qr/\tllama3:70b\t3\t/);
    tool('key set lapse --tokens-per-day 25');
    push @out, 'usage: ' . figures(usage(), 'key:lapse');
    my $r = call('/api/chat', $key, 'X-Standin-Tag' => 'c1');
    (my $s = summary($r)) =~ s/retry=\d+/retry=M/;
    push @out, $s, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
200 retry=-
200 retry=-
200 retry=-
usage: requests 3, prompt 6, completion 24, estimated 0
429 retry=M {"error":"rate limit exceeded: this key's 25 tokens a day are used up (30 today); they renew at 00:00 UTC"}
stand-in got: a1,b1,b2



=== TEST 6: rpm raced by 40 parallel clients over 2 workers: exactly the limit passes, the rest are 429 with a sane Retry-After, and every request is counted once
--- client
    my $key = tool('key create race --source chat --rpm 7');
    my @h = map { start_call('/api/chat', $key, port => $ENV{TEST_NGINX_SPREAD_PORT},
                             'X-Standin-Tag' => "r$_") } 1 .. 40;
    my @r = wait_all(@h);
    my (%status, %pids, @retry);
    for (@r) {
        $status{ $_->{status} // 'none' }++;
        $pids{ $_->{headers}{'x-pid'} }++ if $_->{headers}{'x-pid'};
        push @retry, $_->{headers}{'retry-after'} if $_->{status} == 429;
    }
    my @bad = grep { !/^\d+$/ || $_ < 1 || $_ > 60 } @retry;
    my $s = stats()->{chat};
    join "\n", join(' ', map { "$_:$status{$_}" } sort keys %status),
        'workers: ' . (keys %pids == 2 ? 'both' : scalar keys %pids),
        'Retry-After within 1..60: ' . (@bad ? "no (@bad)" : 'yes'),
        'stand-in got: ' . scalar(@{ standin_requests() }),
        "chat: received $s->{received}, served $s->{served}, quota $s->{rejected}{quota}",
        'balanced: ' . balanced(),
        'usage requests: ' . usage('?key=race')->{principals}{'key:race'}{requests};
--- client_output
200:7 429:33
workers: both
Retry-After within 1..60: yes
stand-in got: 7
chat: received 40, served 7, quota 33
balanced: yes
usage requests: 7



=== TEST 7: max_concurrent raced by 16 parallel held clients over 2 workers: exactly the limit reach Ollama, and the places are all given back
--- client
    my $key = tool('key create crowd --source chat --max-concurrent 3');
    my @h = map { start_call('/api/chat', $key, port => $ENV{TEST_NGINX_SPREAD_PORT},
                             'X-Standin-Tag' => "c$_", 'X-Standin-Hold' => 1) } 1 .. 16;
    wait_until(sub { stats()->{chat}{rejected}{quota} == 13 }, '13 refusals');
    my @out = ('at Ollama: ' . standin_stats()->{active});
    standin_release();
    my %status;
    $status{ $_->{status} }++ for wait_all(@h);
    push @out, join ' ', map { "$_:$status{$_}" } sort keys %status;
    my @again = map { start_call('/api/chat', $key, port => $ENV{TEST_NGINX_SPREAD_PORT},
                                 'X-Standin-Tag' => "d$_", 'X-Standin-Hold' => 1) } 1 .. 3;
    wait_until(sub { standin_stats()->{active} == 3 }, 'the 3 places to be taken again');
    push @out, 'a fourth: ' . summary(call('/api/chat', $key));
    standin_release();
    push @out, 'again: ' . join ',', map { $_->{status} } wait_all(@again);
    # the client has its answer before nginx ends the request and counts it
    my $q;
    eval { wait_until(sub { $q = queue(); $q->{queue_length} == 0 && !@{ $q->{running} }
                            && balanced() eq 'yes' }, 'the requests to end'); 1 };
    push @out, "queue: $q->{queue_length} waiting, " . scalar(@{ $q->{running} }) . ' running';
    push @out, 'balanced: ' . balanced();
    join "\n", @out;
--- client_output
at Ollama: 3
200:3 429:13
a fourth: 429 retry=2 {"error":"rate limit exceeded: this key already has 3 requests waiting or running, the most it may"}
again: 200,200,200
queue: 0 waiting, 0 running
balanced: yes



=== TEST 8: yesterday's usage never counts toward today's tokens, and shows on its own day; the day's refusal says the seconds to 00:00 UTC
--- client
    my $key = tool('key create nora --source chat --tokens-per-day 10');
    my $day = int(time / 86400);
    usage_load($day - 1, 'key:nora', 'llama3:70b', 500000, 500000);
    my @out = ('today: ' . summary(call('/api/chat', $key, 'X-Standin-Tag' => 'n1', 'X-Standin-Tokens' => 8)));
    my $r = call('/api/chat', $key, 'X-Standin-Tag' => 'n2');
    my $retry = $r->{headers}{'retry-after'};
    my $midnight = 86400 - time % 86400;
    push @out, "then: $r->{status}, Retry-After "
        . ($retry =~ /^\d+$/ && $retry >= 1 && $retry <= 86400 && abs($retry - $midnight) <= 2 ? 'to 00:00 UTC' : $retry);
    push @out, 'yesterday: ' . figures(usage("?day=$yesterday"), 'key:nora');
    push @out, 'today: ' . figures(usage(), 'key:nora');
    push @out, 'both: ' . figures(usage("?from=$yesterday&to=$today"), 'key:nora');
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
today: 200 retry=-
then: 429, Retry-After to 00:00 UTC
yesterday: requests 1, prompt 500000, completion 500000, estimated 0
today: requests 1, prompt 2, completion 8, estimated 0
both: requests 2, prompt 500002, completion 500008, estimated 0
stand-in got: n1



=== TEST 9: limits of odd spellings and out of range, through the API and the tool: refused, nothing changed
--- client
    tool('key create odd --source chat --rpm 7 --tokens-per-day 70 --max-concurrent 3');
    my @out;
    for my $body ('{"rpm":1e3}', '{"rpm":01}', '{"rpm":18446744073709551616}',
                  '{"rpm":99999999999999999999999999}', '{"tokens_per_day":-1}',
                  '{"max_concurrent":"3"}', '{"rpm":[1]}', '{"rpm":{"n":1}}',
                  '{"rpm":1,"tokens_per_day":"x"}')
    {
        my $r = admin('keys/odd', method => 'PATCH', body => $body);
        push @out, "$body: $r->{status} " . ($r->{body} =~ /^\{"error":"/ ? 'JSON error' : $r->{body});
    }
    push @out, 'after the API: ' . listed('odd');
    for my $args ('--rpm 99999999999999999999999', '--rpm +5', "--rpm ' 5'", '--rpm 0x10',
                  '--rpm 5abc', '--tokens-per-day 18446744073709551616', '--max-concurrent 1e2',
                  '--rpm 1 --tokens-per-day x')
    {
        my $r = sd("key set odd $args");
        push @out, "$args: exit $r->{status}";
    }
    push @out, 'after the tool: ' . listed('odd');
    my $r = admin('keys/odd', method => 'PATCH', body => '{"rpm":1000000,"tokens_per_day":1000000000000000,"max_concurrent":100000}');
    push @out, "the most: $r->{status} $r->{body}";
    join "\n", @out;
--- client_output
{"rpm":1e3}: 400 JSON error
{"rpm":01}: 400 JSON error
{"rpm":18446744073709551616}: 400 JSON error
{"rpm":99999999999999999999999999}: 400 JSON error
{"tokens_per_day":-1}: 400 JSON error
{"max_concurrent":"3"}: 400 JSON error
{"rpm":[1]}: 400 JSON error
{"rpm":{"n":1}}: 400 JSON error
{"rpm":1,"tokens_per_day":"x"}: 400 JSON error
after the API: 7 70 3
--rpm 99999999999999999999999: exit 2
--rpm +5: exit 2
--rpm ' 5': exit 2
--rpm 0x10: exit 2
--rpm 5abc: exit 2
--tokens-per-day 18446744073709551616: exit 2
--max-concurrent 1e2: exit 2
--rpm 1 --tokens-per-day x: exit 2
after the tool: 7 70 3
the most: 200 {"name":"odd","limits":{"rpm":1000000,"tokens_per_day":1000000000000000,"max_concurrent":100000},"weight":1}



=== TEST 10: 4,200 distinct model names (behind an engine that takes any): every answer is kept or counted as dropped, the metrics fold models past 64 into "other", and the gate still takes requests
--- client
    my $any = $ENV{TEST_NGINX_ANY_PORT};
    my $n = 4200;
    my %status;
    for my $i (1 .. $n) {
        my $r = request('POST /api/chat', port => $any, body => chat_body("m$i"));
        $status{ $r->{status} }++;
    }
    my @out = ('answers: ' . join(' ', map { "$_:$status{$_}" } sort keys %status));
    my ($u, $p);
    eval { wait_until(sub { $u = usage(); $p = $u->{principals}{'source:open'};
                            $p->{requests} + $u->{dropped} == $n }, 'every answer kept or dropped'); 1 };
    push @out, 'kept + dropped: ' . ($p->{requests} + $u->{dropped} == $n ? 'all' : "$p->{requests} + $u->{dropped}");
    push @out, 'tokens kept: ' . ($p->{prompt_tokens} == 3 * $p->{requests} ? 'each' : $p->{prompt_tokens});
    my $m = request('GET /metrics')->{body};
    my @models = $m =~ /^seadragon_model_load_seconds_total\{[^}]*model="([^"]*)"/mg;
    push @out, 'metrics models: ' . scalar(@models) . (grep({ $_ eq 'other' } @models) ? ' with other' : '');
    my $prompt = 0;
    $prompt += $_ for $m =~ /^seadragon_tokens_total\{[^}]*kind="prompt"\} (\d+)$/mg;
    my ($dm) = $m =~ /^seadragon_usage_dropped_total\{[^}]*\} (\d+)$/m;
    push @out, 'metrics prompt tokens: ' . ($prompt == 3 * $n ? 'all' : $prompt);
    push @out, promtool_ok($m);
    push @out, 'the gate: ' . summary(call('/api/chat', undef, 'X-Standin-Tag' => 'after'));
    push @out, 'stand-in got: ' . got();
    push @out, 'balanced: ' . balanced();
    join "\n", @out;
--- client_output
answers: 200:4200
kept + dropped: all
tokens kept: each
metrics models: 65 with other
metrics prompt tokens: all
promtool: ok
the gate: 200 retry=-
stand-in got: after
balanced: yes
--- no_error_log
[alert]
[crit]
--- timeout: 120



=== TEST 11: without a store, 4,200 distinct model names fill the zone's rows: what found no room is counted as dropped, nothing else lost, and the gate still takes requests
--- http_config
    seadragon_zone ollama:1m capacity=4 max_queued=60 tick=50ms;
    seadragon_source open priority=2;
    server {
        listen 127.0.0.1:$TEST_NGINX_ANY_PORT;
        location / {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_ENGINE_PORT;
            proxy_buffering off;
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_ENGINE_PORT;
        location / {
            default_type application/json;
            return 200 '{"model":"m","done":true,"prompt_eval_count":3,"eval_count":5,"eval_duration":1000000}';
        }
    }
--- config
    location /admin/ { seadragon_admin ollama auth=nginx; }
    location = /metrics { seadragon_metrics ollama; }
    location / {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
    }
--- client
    my $any = $ENV{TEST_NGINX_ANY_PORT};
    my $n = 4200;
    my %status;
    for my $i (1 .. $n) {
        my $r = request('POST /api/chat', port => $any, body => chat_body("m$i"));
        $status{ $r->{status} }++;
    }
    my @out = ('answers: ' . join(' ', map { "$_:$status{$_}" } sort keys %status));
    my ($u, $p);
    # the last answer is kept as its request ends, after the client has it
    eval { wait_until(sub { $u = json_decode(request('GET /admin/usage')->{body});
                            $p = $u->{principals}{'source:open'};
                            $p->{requests} + $u->{dropped} == $n }, 'every answer kept or dropped'); 1 };
    push @out, "store: " . ($u->{store} ? 'yes' : 'no');
    push @out, 'kept + dropped: ' . ($p->{requests} + $u->{dropped} == $n ? 'all' : "$p->{requests} + $u->{dropped}");
    push @out, 'dropped: ' . ($u->{dropped} > 0 ? 'some' : 'none');
    my $m = request('GET /metrics')->{body};
    my ($dm) = $m =~ /^seadragon_usage_dropped_total\{[^}]*what="usage"\} (\d+)$/m;
    push @out, 'metrics say dropped: ' . ($dm == $u->{dropped} ? 'the same' : "$dm");
    push @out, 'the gate: ' . summary(call('/api/chat', undef, 'X-Standin-Tag' => 'after'));
    push @out, 'stand-in got: ' . got();
    my $s = json_decode(request('GET /admin/stats')->{body})->{sources}{open};
    push @out, "open: received $s->{received}, served $s->{served}";
    join "\n", @out;
--- client_output
answers: 200:4200
store: no
kept + dropped: all
dropped: some
metrics say dropped: the same
the gate: 200 retry=-
stand-in got: after
open: received 4201, served 4201
--- no_error_log
[alert]
[crit]
--- timeout: 120



=== TEST 12: a worker killed with SIGKILL in the middle of a key's stream: the key's place is given back, the stream's tokens are not counted (the README says so), the counters still add up, the new workers run
--- client
    my $key = tool('key create victim2 --source chat --max-concurrent 1 --tokens-per-day 1000');
    my $body = json_encode({ model => 'llama3:70b', messages => [{ role => 'user', content => 'hi there' }] });
    my $h = start_call('/api/chat', $key, body => $body, 'X-Standin-Tag' => 'killed',
                       'X-Standin-Tokens' => 50, 'X-Standin-Pause-After' => 4);
    wait_until(sub { (standin_requests()->[0]{tokens_sent} // 0) >= 4 }, 'the stream to be under way');
    my $holder = queue()->{running}[0]{worker};
    my @out = ('while it streams: ' . summary(call('/api/chat', $key, 'X-Standin-Tag' => 'refused')));
    kill 'KILL', $holder or die "kill $holder: $!";
    wait_request($h);
    my ($r, $early);
    # each try before the reaping is one more refusal (the machine's load)
    wait_until(sub { $r = call('/api/chat', $key, 'X-Standin-Tag' => 'after', 'X-Standin-Tokens' => 3);
                     $early++ if $r->{status} == 429;
                     $r->{status} == 200 }, 'the key to be served again');
    standin_release();
    push @out, 'after the reaping: ' . summary($r);
    push @out, 'the killed worker: ' . (kill(0, $holder) ? 'alive' : 'gone');
    push @out, 'workers: ' . scalar(nginx_worker_pids());
    push @out, 'usage: ' . figures(usage(), 'key:victim2');
    my $s = stats()->{chat};
    push @out, "reaped $s->{aborted}{reaped}, quota " . ($s->{rejected}{quota} - ($early // 0));
    push @out, 'balanced: ' . balanced();
    push @out, 'stand-in got: ' . join ',', grep { $_ ne 'refused' } split /,/, got();
    join "\n", @out;
--- client_output
while it streams: 429 retry=2 {"error":"rate limit exceeded: this key already has 1 requests waiting or running, the most it may"}
after the reaping: 200 retry=-
the killed worker: gone
workers: 2
usage: requests 1, prompt 2, completion 3, estimated 0
reaped 1, quota 1
balanced: yes
stand-in got: killed,after
--- no_error_log
[crit]
[emerg]



=== TEST 13: the store truncated under the usage writer: the workers live on, GET usage says 503 in JSON, keyless requests are served, and once a good copy is back nothing of the usage is lost
--- client
    my $store = $ENV{TEST_NGINX_STORE};
    my @pids = sort(nginx_worker_pids());
    my %any = (port => $ENV{TEST_NGINX_ANY_PORT}, body => chat_body('trunc13'));
    my @out = (summary(call('/api/chat', undef, %any)));
    written('--source open', qr/source:open\ttrunc13\t1\t/);
    system("cp -a '$store/data.mdb' '$dir/data.mdb.good'") == 0 or die;
    truncate "$store/data.mdb", 0 or die "truncate: $!";
    push @out, summary(call('/api/chat', undef, %any));
    my $g;
    wait_until(sub { $g = admin('usage'); $g->{status} == 503 }, 'GET usage to meet the broken store');
    push @out, "GET usage: $g->{status} $g->{body}";
    push @out, summary(call('/api/chat', undef, %any));
    system("cp '$dir/data.mdb.good' '$store/data.mdb'") == 0 or die;
    my $rows = written('--source open', qr/source:open\ttrunc13\t3\t/);
    push @out, 'written: ' . (grep { /trunc13/ } split /\n/, $rows)[0];
    push @out, 'GET usage: ' . figures(usage(), 'source:open', 'trunc13') . ', unwritten ' . usage()->{unwritten};
    push @out, 'the same workers: ' . (join(',', sort(nginx_worker_pids())) eq join(',', @pids) ? 'yes' : 'no');
    push @out, 'stand-in got: ' . got();
    push @out, 'balanced: ' . balanced();
    join "\n", @out;
--- client_output
200 retry=-
200 retry=-
GET usage: 503 {"error":"the gateway cannot check access right now, please try again"}
200 retry=-
written: source:open	trunc13	3	9	15	0.003	0.000	0
GET usage: requests 3, prompt 9, completion 15, estimated 0, unwritten 0
the same workers: yes
stand-in got: nothing
balanced: yes
--- no_error_log
[alert]
--- timeout: 60



=== TEST 14: GET usage and PATCH keys/NAME with hostile arguments: a clear JSON answer each, nothing changed
--- client
    tool('key create pat --source chat --rpm 3');
    tool('key create gone --source chat --rpm 3');
    tool('key revoke gone');
    my @out;
    my $long = 'a' x 2000;
    for my $q ('key=a%00b', "key=$long", 'day=2026-02-30', 'day=9999-12-31', 'day=1969-12-31',
               'from=1970-01-01&to=1970-12-31', 'day=2026-12-01&day=2026-12-02',
               'key=pat&key=ops', 'day=%32026-12-01', 'day=2026-12-1', 'source=', 'key=')
    {
        my $r = admin("usage?$q");
        my $ok = eval { json_decode($r->{body}); 1 };
        push @out, "usage?" . ($q =~ s/a{2000}/A*2000/r) . ": $r->{status} " . ($ok ? ($r->{status} == 200 ? 'JSON' : $r->{body}) : "not JSON: $r->{body}");
    }
    for my $name ('pat%2Frpm', 'gone', '', "$long", 'pat/', 'PAT') {
        my $r = admin("keys/$name", method => 'PATCH', body => '{"rpm":1}');
        my $ok = eval { json_decode($r->{body}); 1 };
        push @out, "PATCH keys/" . ($name =~ s/a{2000}/A*2000/r) . ": $r->{status} " . ($ok ? 'JSON' : "not JSON: $r->{body}");
    }
    my $r = admin('keys/pat', method => 'PATCH', body => '{"rpm":1,' . ('"x":1,' x 100000) . '"max_concurrent":1}');
    push @out, "PATCH a big body: $r->{status} " . (eval { json_decode($r->{body}); 1 } ? 'JSON' : 'not JSON');
    push @out, 'pat: ' . listed('pat');
    join "\n", @out;
--- client_output
usage?key=a%00b: 400 {"error":"key= is not a key's name"}
usage?key=A*2000: 400 {"error":"a query value is too long"}
usage?day=2026-02-30: 400 {"error":"day= is not a date: use YYYY-MM-DD (UTC)"}
usage?day=9999-12-31: 200 JSON
usage?day=1969-12-31: 400 {"error":"day= is not a date: use YYYY-MM-DD (UTC)"}
usage?from=1970-01-01&to=1970-12-31: 200 JSON
usage?day=2026-12-01&day=2026-12-02: 400 {"error":"day= is given twice"}
usage?key=pat&key=ops: 400 {"error":"key= is given twice"}
usage?day=%32026-12-01: 200 JSON
usage?day=2026-12-1: 400 {"error":"day= is not a date: use YYYY-MM-DD (UTC)"}
usage?source=: 400 {"error":"source= is not a source's name"}
usage?key=: 400 {"error":"key= is not a key's name"}
PATCH keys/pat%2Frpm: 404 JSON
PATCH keys/gone: 404 JSON
PATCH keys/: 405 JSON
PATCH keys/A*2000: 404 JSON
PATCH keys/pat/: 200 JSON
PATCH keys/PAT: 404 JSON
PATCH a big body: 413 JSON
pat: 1 - -



=== TEST 15: a key's client that stops reading its stream: cut after seadragon_stall_timeout, what passed is counted once as an estimate and for the key's day, its place is given back, the counters add up
--- config
    location /admin/ { seadragon_admin ollama; }
    location / {
        seadragon_queue ollama;
        seadragon_stall_timeout 1s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
--- client
    use IO::Socket::INET;
    my $key = tool('key create sleepy --source chat --max-concurrent 1 --tokens-per-day 100000000');
    my $body = json_encode({ model => 'llama3:70b', messages => [{ role => 'user', content => 'hi there' }] });
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!";
    setsockopt($sock, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
    print $sock "POST /api/chat HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer $key\r\n"
        . "X-Standin-Tokens: 200000\r\nX-Standin-Delay-Ms: 0\r\nX-Standin-Tag: sleepy\r\n"
        . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
    wait_until(sub { stats()->{chat}{aborted}{streaming} == 1 }, 'the stalled client to be cut', 20);
    my $rec = standin_requests()->[0];
    my $u;
    wait_until(sub { $u = usage('?key=sleepy')->{principals}{'key:sleepy'}; $u && $u->{requests} == 1 },
               'its usage to be kept');
    my @out = ("usage: requests $u->{requests}, estimated $u->{estimated}, completion "
               . ($u->{completion_tokens} > 0 && $u->{completion_tokens} <= $rec->{tokens_sent} ? 'what passed' : "$u->{completion_tokens} of $rec->{tokens_sent}"));
    push @out, 'the stream: ' . ($rec->{tokens_sent} < 200000 ? 'cut' : 'whole');
    my $r = call('/api/chat', $key, 'X-Standin-Tag' => 'next');
    push @out, 'the next: ' . summary($r);
    my $again = usage('?key=sleepy')->{principals}{'key:sleepy'};
    push @out, 'counted once: ' . ($again->{requests} == 2 && $again->{completion_tokens} == $u->{completion_tokens} + 2 ? 'yes' : 'no');
    tool("key set sleepy --tokens-per-day " . ($u->{completion_tokens} + 4));
    my $t = call('/api/chat', $key, 'X-Standin-Tag' => 'over');
    push @out, "for the key's day: " . ($t->{status} == 429 && $t->{body} =~ /used up/ ? 'yes' : summary($t));
    push @out, 'balanced: ' . balanced();
    push @out, 'stand-in got: ' . got();
    close $sock;
    join "\n", @out;
--- client_output
usage: requests 1, estimated 1, completion what passed
the stream: cut
the next: 200 retry=-
counted once: yes
for the key's day: yes
balanced: yes
stand-in got: sleepy,next
--- timeout: 60



=== TEST 16: 5,000 keys with limits in a 1 MB zone, each with a request: the keys that fit are served, the others refused in JSON and counted, and the gate still serves a keyless request and a key's limits afterwards
--- client
    my $tool = store_tool_path();
    my %keys;
    for my $i (1 .. 5000) {
        my $k = `'$tool' --store '$ENV{TEST_NGINX_STORE}' key create many$i --source chat --rpm 100 2>/dev/null`;
        chomp $k;
        $keys{$i} = $k;
    }
    my $first = tool('key create first --source chat --rpm 1');
    my $f1 = call('/api/chat', $first, 'X-Standin-Tag' => 'f1')->{status};
    my $any = $ENV{TEST_NGINX_ANY_PORT};
    my (%status, %bodies);
    for my $i (1 .. 5000) {
        my $r = call('/api/chat', $keys{$i}, port => $any, body => chat_body('m'));
        $status{ $r->{status} }++;
        $bodies{ $r->{body} }++ if $r->{status} != 200;
    }
    my @out = ('answers: ' . join(' ', map { $_ == 200 ? ($status{$_} >= 2000 ? '200:2000 or more' : "200:$status{$_}") : $_ } sort keys %status));
    push @out, map { "refused with: $_" } sort keys %bodies;
    push @out, 'counted as unavailable: ' . (stats()->{chat}{rejected}{unavailable} == ($status{503} // 0) ? 'each' : 'no');
    push @out, 'keyless: ' . summary(call('/api/chat', undef, 'X-Standin-Tag' => 'keyless'));
    push @out, 'a key known before, rpm 1: ' . join(',', $f1, call('/api/chat', $first, 'X-Standin-Tag' => 'f2')->{status});
    my $key = tool('key create last --source chat --rpm 1');
    # as the usage rows the store has are swept, it may fit or not
    my $l = call('/api/chat', $key, 'X-Standin-Tag' => 'l1');
    push @out, 'a new key: ' . ($l->{status} == 200 || ($l->{status} == 503 && $l->{body} =~ /no memory left for this key/)
                                ? 'served, or refused saying why' : summary($l));
    push @out, 'balanced: ' . balanced();
    push @out, 'stand-in got: ' . join ',', grep { $_ ne 'l1' } split /,/, got();
    join "\n", @out;
--- client_output
answers: 200:2000 or more 503
refused with: {"error":"server busy, please try again.  the gateway has no memory left for this key's limits"}
counted as unavailable: each
keyless: 200 retry=-
a key known before, rpm 1: 200,429
a new key: served, or refused saying why
balanced: yes
stand-in got: f1,keyless
--- no_error_log
[alert]
[crit]
--- timeout: 180



=== TEST 17: a tokens limit set while the store refuses the workers' writes: the tokens the zone has not written yet count, so the key gets no fresh day
--- master_on
--- main_config
    user nobody nogroup;
--- http_config
    seadragon_store $TEST_NGINX_RO_STORE;
    seadragon_zone ollama:1m capacity=2;
    seadragon_source chat priority=1 key;
    seadragon_source open priority=2;
--- config
    location / {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
    }
--- client
    my $store = $ENV{TEST_NGINX_RO_STORE};
    my $tool = store_tool_path();
    # the master gave the files to the workers' user: now they may read only
    chmod 0444, "$store/data.mdb" or die $!;
    my @out = (summary(call('/api/chat', $main::ro_seedy, 'X-Standin-Tag' => 's1', 'X-Standin-Tokens' => 8)));
    wait_until(sub { error_log_text() =~ /is read-only for nginx workers/ }, 'a refused write');
    system("'$tool' --store '$store' key set seedy --tokens-per-day 5 >/dev/null 2>&1") == 0 or die 'key set';
    my $r = call('/api/chat', $main::ro_seedy, 'X-Standin-Tag' => 's2');
    (my $s = summary($r)) =~ s/retry=\d+/retry=M/;
    push @out, $s;
    chmod 0644, "$store/data.mdb" or die $!;
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
200 retry=-
429 retry=M {"error":"rate limit exceeded: this key's 5 tokens a day are used up (10 today); they renew at 00:00 UTC"}
stand-in got: s1
--- error_log
is read-only for nginx workers



=== TEST 18: a reload that loads the module from another file (so at another address): the usage table made before it takes new rows after it, the workers live
--- master_on
--- http_config
    seadragon_zone ollama:1m capacity=4 max_queued=60 tick=50ms;
    seadragon_source open priority=2;
    server {
        listen 127.0.0.1:$TEST_NGINX_ANY_PORT;
        location / {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_ENGINE_PORT;
            proxy_buffering off;
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_ENGINE_PORT;
        location / {
            default_type application/json;
            return 200 '{"model":"m","done":true,"prompt_eval_count":3,"eval_count":5,"eval_duration":1000000}';
        }
    }
--- config
    location /admin/ { seadragon_admin ollama auth=nginx; }
    location / {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
    }
--- client
    my $any = $ENV{TEST_NGINX_ANY_PORT};
    my @out;
    push @out, 'before: ' . request('POST /api/chat', port => $any, body => chat_body('before'))->{status};
    # the other modules loaded, if any, stay as they are
    my @so = Test::Seadragon::load_modules();
    my ($so) = grep { /seadragon/ } @so;
    my $copy = "$dir/copy-of-module.so";
    system('cp', $so, $copy) == 0 or die "cp: $!";
    my $saved = $ENV{TEST_NGINX_LOAD_MODULES};
    $ENV{TEST_NGINX_LOAD_MODULES} = join ' ', map { $_ eq $so ? $copy : $_ } @so;
    nginx_reload(main_config => "");
    if (defined $saved) { $ENV{TEST_NGINX_LOAD_MODULES} = $saved } else { delete $ENV{TEST_NGINX_LOAD_MODULES} }
    for my $m (qw(after1 after2 after3)) {
        my $r = request('POST /api/chat', port => $any, body => chat_body($m));
        push @out, "$m: $r->{status} " . ($r->{body} =~ /"done":true/ ? 'whole' : 'cut');
    }
    my $u;
    wait_until(sub { $u = json_decode(request('GET /admin/usage')->{body});
                     ($u->{principals}{'source:open'}{requests} // 0) >= 4 }, 'the usage kept');
    my $p = $u->{principals}{'source:open'};
    push @out, 'rows: ' . join(' ', map { "$_=$p->{models}{$_}{requests}" } sort keys %{ $p->{models} });
    push @out, 'crashed: ' . (error_log_text() =~ /exited on signal/ ? 'yes' : 'no');
    join "\n", @out;
--- client_output
before: 200
after1: 200 whole
after2: 200 whole
after3: 200 whole
rows: after1=1 after2=1 after3=1 before=1
crashed: no
--- no_error_log
[alert]
[crit]



=== TEST 19: an engine that reports a prompt_eval_count at the top of uint64: its tokens stay at the most a JSON integer holds (no sum wraps to a few): the key's day is full, GET usage and the refusal say that most
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m capacity=4 max_queued=60 tick=50ms;
    seadragon_source chat priority=1 key;
    seadragon_source open priority=2;
    server {
        listen 127.0.0.1:$TEST_NGINX_ANY_PORT;
        location /admin/ { seadragon_admin ollama; }
        location / {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_ENGINE_PORT;
            proxy_buffering off;
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_ENGINE_PORT;
        location / {
            default_type application/json;
            return 200 '{"model":"m","done":true,"prompt_eval_count":18446744073709551615,"eval_count":5,"eval_duration":1000000}';
        }
    }
--- client
    my $any = $ENV{TEST_NGINX_ANY_PORT};
    my $key = tool('key create huge --source chat --tokens-per-day 100');
    my @out;
    for my $i (1 .. 3) {
        my $r = request('POST /api/chat', port => $any, body => chat_body("big"),
                        headers => { Authorization => "Bearer $key" });
        (my $s = summary($r)) =~ s/retry=\d+/retry=M/;
        push @out, $s;
    }
    my $u;
    wait_until(sub { $u = json_decode(request('GET /admin/usage', port => $any,
                         headers => { Authorization => "Bearer $ops" })->{body});
                     ($u->{principals}{'key:huge'}{requests} // 0) >= 1 }, 'the usage kept');
    my $p = $u->{principals}{'key:huge'};
    push @out, "usage: requests $p->{requests}, prompt $p->{prompt_tokens}, completion $p->{completion_tokens}";
    join "\n", @out;
--- client_output
200 retry=-
429 retry=M {"error":"rate limit exceeded: this key's 100 tokens a day are used up (9223372036854775807 today); they renew at 00:00 UTC"}
429 retry=M {"error":"rate limit exceeded: this key's 100 tokens a day are used up (9223372036854775807 today); they renew at 00:00 UTC"}
usage: requests 1, prompt 9223372036854775807, completion 5
--- no_error_log
[alert]
[crit]



=== TEST 20: a store from before usage was counted gets its usage database from another process while the workers run, with a record that is not one: the write that fails on it leaves no database handle behind, GET usage still answers and the limits' seed still reads the store
--- workers: 1
--- http_config
    seadragon_store $TEST_NGINX_OLD_STORE;
    seadragon_zone ollama:1m capacity=4 max_queued=60 tick=50ms;
    seadragon_source chat priority=1 key;
    seadragon_source open priority=2;
--- config
    location /admin/ { seadragon_admin ollama auth=nginx; }
    location / {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
    }
--- client
    my $store = $ENV{TEST_NGINX_OLD_STORE};
    my @out = ('before: ' . request('GET /admin/usage')->{status});
    # the database, made by another process, with a record of 3 bytes
    my $day = int(time / 86400);
    my $file = "$main::old_dir/bad";
    open my $fh, '>', $file or die $!;
    print $fh "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n",
        ' ', unpack('H*', pack('N', $day) . "source:open\0llama3:70b"), "\n 010203\nDATA=END\n";
    close $fh;
    system("mdb_load -s usage -f '$file' '$store'") == 0 or die 'mdb_load';
    push @out, summary(call('/api/chat', undef, 'X-Standin-Tag' => 'o1'));
    wait_until(sub { error_log_text() =~ /writing the usage of zone "ollama" failed: MDB_CORRUPTED/ }, 'the failed usage write');
    my $r = request('GET /admin/usage');
    push @out, "usage: $r->{status}";
    if ($r->{status} == 200) {
        my $u = json_decode($r->{body});
        push @out, 'open: ' . figures($u, 'source:open') . ", unwritten $u->{unwritten}";
    }
    # a key's day starts from the store: its usage, written by the tool's peer
    my $key = tool("--store '$store' key create old --source chat --tokens-per-day 5");
    open $fh, '>', $file or die $!;
    print $fh "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n",
        ' ', unpack('H*', pack('N', $day) . "key:old\0llama3:70b"), "\n ",
        unpack('H*', pack('V V Q< Q< Q< Q< Q< Q< Q<', 1, 0, 1, 4, 4, 0, 0, 0, 0)), "\nDATA=END\n";
    close $fh;
    system("mdb_load -s usage -f '$file' '$store'") == 0 or die 'mdb_load';
    ($r = summary(call('/api/chat', $key, 'X-Standin-Tag' => 'k1'))) =~ s/retry=\d+/retry=M/;
    push @out, "the key: $r";
    push @out, 'stand-in got: ' . got();
    join "\n", @out;
--- client_output
before: 200
200 retry=-
usage: 200
open: requests 1, prompt 2, completion 2, estimated 0, unwritten 1
the key: 429 retry=M {"error":"rate limit exceeded: this key's 5 tokens a day are used up (8 today); they renew at 00:00 UTC"}
stand-in got: o1
--- error_log
writing the usage of zone "ollama" failed: MDB_CORRUPTED
--- no_error_log
[alert]
[crit]



=== TEST 21: a store from before usage was counted, opened by workers that never wrote to it: a key's day still starts from the usage another process writes there
--- workers: 1
--- http_config
    seadragon_store $TEST_NGINX_OLD_STORE2;
    seadragon_zone ollama:1m capacity=4 max_queued=60 tick=50ms;
    seadragon_source chat priority=1 key;
    seadragon_source open priority=2;
--- config
    location / {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
    }
--- client
    my $store = $ENV{TEST_NGINX_OLD_STORE2};
    my $day = int(time / 86400);
    my $key = tool("--store '$store' key create old2 --source chat --tokens-per-day 5");
    # today's usage of the key, 4 + 4 tokens, written by another gateway
    my $file = "$main::old_dir/usage2";
    open my $fh, '>', $file or die $!;
    print $fh "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n",
        ' ', unpack('H*', pack('N', $day) . "key:old2\0llama3:70b"), "\n ",
        unpack('H*', pack('V V Q< Q< Q< Q< Q< Q< Q<', 1, 0, 1, 4, 4, 0, 0, 0, 0)), "\nDATA=END\n";
    close $fh;
    system("mdb_load -s usage -f '$file' '$store'") == 0 or die 'mdb_load';
    (my $r = summary(call('/api/chat', $key, 'X-Standin-Tag' => 'n1'))) =~ s/retry=\d+/retry=M/;
    join "\n", "the key: $r", 'stand-in got: ' . got();
--- client_output
the key: 429 retry=M {"error":"rate limit exceeded: this key's 5 tokens a day are used up (8 today); they renew at 00:00 UTC"}
stand-in got: nothing
--- no_error_log
[alert]
[crit]
