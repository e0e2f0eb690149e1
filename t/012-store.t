# The store in the gateway: whitelisted addresses and API keys, changed
# with scripts/seadragon-store while nginx runs, taking effect on the next
# request with no reload.
use lib 't/lib';
use Test::Seadragon;
use File::Temp ();

our $tool = "$ENV{PWD}/build/seadragon-store";
our $dir = File::Temp->newdir();
our $store = "$dir/store";
$ENV{TEST_NGINX_STORE} = $store;

# runs the tool; its stdout, or death with what it said
sub tool {
    my @args = @_;
    my $err = "$dir/tool.err";
    my $out = `'$tool' --store '$store' @args 2>'$err'`;
    if ($?) {
        open my $fh, '<', $err;
        die "seadragon-store @args failed ($?): " . do { local $/; <$fh> };
    }
    chomp $out;
    return $out;
}

# An empty store for each block, emptied with the tool: nginx's workers
# keep the environment they opened, so it must stay the same files.
sub fresh_store {
    for (split /\n/, tool('whitelist list')) {
        my ($net) = split /\t/;
        tool("whitelist remove $net");
    }
    my (undef, @keys) = split /\n/, tool('key list');   # under a header row
    for (@keys) {
        my ($name) = split /\t/;
        tool("key revoke $name");
    }
}

if (!-x $tool) {
    require Test::More;
    Test::More::plan(skip_all => "build/seadragon-store is not built: run make");
}

tool('init');

# an environment whose data file is garbage
mkdir "$store-corrupt" or die $!;
open my $fh, '>', "$store-corrupt/data.mdb" or die $!;
print $fh "this is not an LMDB file\n" x 512;
close $fh;

# a store that root can open at start-up and the workers (nobody) cannot:
# its directory is closed to them
system("'$tool' --store '$store-private' init >/dev/null 2>&1") == 0 or die;
chmod 0700, "$store-private" or die $!;

our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 if=$http_x_coding key;
    seadragon_source chat   priority=2 if=$http_x_chat;
    seadragon_source api    priority=3 whitelist;
_EOC_

our $config = <<'_EOC_';
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        add_header X-Source $seadragon_source always;
        add_header X-Key-Name $seadragon_key_name always;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

# an untagged chat, answered before it returns (not the harness's chat())
sub chat_now {
    my (%headers) = @_;
    return request('POST /api/chat',
        body => '{"model":"llama3:70b","messages":[],"stream":false}',
        headers => { 'X-Standin-Tokens' => 1, %headers });
}

sub summary {
    my ($r) = @_;
    my $s = "$r->{status} " . ($r->{headers}{'x-source'} // '-');
    $s .= " $r->{body}" if $r->{status} != 200;
    return $s;
}

run_tests();

__DATA__

=== TEST 1: an address that is not whitelisted is refused with 403 JSON and never queues
--- client
    fresh_store();
    my $r = chat_now();
    join "\n", summary($r), $r->{headers}{'content-type'},
        scalar @{ standin_requests() };
--- client_output
403 api {"error":"IP not whitelisted"}
application/json
0



=== TEST 2: whitelisting an address with the tool takes effect on the next request
--- client
    fresh_store();
    my $before = chat_now();
    tool('whitelist add 127.0.0.1');
    my $after = chat_now();
    tool('whitelist remove 127.0.0.1');
    my $removed = chat_now();
    join "\n", map { summary($_) } $before, $after, $removed;
--- client_output
403 api {"error":"IP not whitelisted"}
200 api
403 api {"error":"IP not whitelisted"}



=== TEST 3: CIDR ranges, from /0 to /32, with the address seen through realip
--- client
    fresh_store();
    my @out;
    for my $case ([ '10.1.2.0/24', '10.1.2.77' ], [ '10.1.2.0/24', '10.1.3.1' ],
                  [ '10.1.2.77/32', '10.1.2.77' ], [ '10.1.2.77/32', '10.1.2.78' ],
                  [ '10.0.0.0/8', '10.200.0.1' ], [ '0.0.0.0/0', '192.0.2.1' ])
    {
        my ($net, $addr) = @$case;
        tool("whitelist add $net");
        push @out, "$net $addr " . chat_now('X-Forwarded-For' => $addr)->{status};
        tool("whitelist remove $net");
    }
    join "\n", @out;
--- client_output
10.1.2.0/24 10.1.2.77 200
10.1.2.0/24 10.1.3.1 403
10.1.2.77/32 10.1.2.77 200
10.1.2.77/32 10.1.2.78 403
10.0.0.0/8 10.200.0.1 200
0.0.0.0/0 192.0.2.1 200



=== TEST 4: IPv6 addresses and ranges, /128 and /0, and IPv4-mapped IPv6
--- client
    fresh_store();
    my @out;
    for my $case ([ '2001:db8::/32', '2001:db8:1::5' ], [ '2001:db8::/32', '2001:db9::1' ],
                  [ '2001:db8::5', '2001:db8::5' ], [ '2001:db8::5/128', '2001:db8::6' ],
                  [ '::/0', '2001:db8::1' ], [ '::/0', '192.0.2.1' ],
                  [ '192.0.2.0/24', '::ffff:192.0.2.9' ])
    {
        my ($net, $addr) = @$case;
        tool("whitelist add $net");
        push @out, "$net $addr " . chat_now('X-Forwarded-For' => $addr)->{status};
        tool("whitelist remove $net");
    }
    join "\n", @out;
--- client_output
2001:db8::/32 2001:db8:1::5 200
2001:db8::/32 2001:db9::1 403
2001:db8::5 2001:db8::5 200
2001:db8::5/128 2001:db8::6 403
::/0 2001:db8::1 200
::/0 192.0.2.1 403
192.0.2.0/24 ::ffff:192.0.2.9 200



=== TEST 5: nested ranges: the most specific entry and its parent both count
--- client
    fresh_store();
    tool('whitelist add 10.0.0.0/8');
    tool('whitelist add 10.1.2.0/24');
    my @s = map { chat_now('X-Forwarded-For' => $_)->{status} } qw(10.0.0.5 10.1.2.3 11.0.0.1);
    tool('whitelist remove 10.0.0.0/8');
    push @s, map { chat_now('X-Forwarded-For' => $_)->{status} } qw(10.0.0.5 10.1.2.3);
    "@s";
--- client_output: 200 200 403 403 200



=== TEST 6: GET requests that bypass the queue are still checked
--- request
GET /api/tags
--- error_code: 403
--- response_body chomp
{"error":"IP not whitelisted"}



=== TEST 7: a key grants its source, names itself in $seadragon_key_name, and never reaches Ollama
--- client
    fresh_store();
    my $key = tool('key create editor-alice --source coding');
    die "not a key: $key" unless $key =~ /^sd-[A-Za-z0-9_-]{43}$/;
    my $r = chat_now('Authorization' => "Bearer $key");
    my $h = standin_requests()->[0]{headers};
    join " ", summary($r), $r->{headers}{'x-key-name'},
        (exists $h->{authorization} ? 'leaked' : 'stripped');
--- client_output: 200 coding editor-alice stripped



=== TEST 8: X-API-Key works as well as Authorization: Bearer
--- client
    fresh_store();
    my $key = tool('key create script --source chat');
    my $r = chat_now('X-API-Key' => $key);
    my $h = standin_requests()->[0]{headers};
    join " ", summary($r), (exists $h->{'x-api-key'} ? 'leaked' : 'stripped');
--- client_output: 200 chat stripped



=== TEST 9: claiming to be a coding tool without a key does not give its priority
--- client
    fresh_store();
    my $r = chat_now('X-Coding' => 1);
    join "\n", summary($r), $r->{headers}{'www-authenticate'}, scalar @{ standin_requests() };
--- client_output
401 coding {"error":"API key required"}
Bearer
0



=== TEST 10: a key for another source does not give the coding priority either
--- client
    fresh_store();
    my $key = tool('key create chatbot --source chat');
    summary(chat_now('X-Coding' => 1, 'Authorization' => "Bearer $key"));
--- client_output: 200 chat



=== TEST 11: a key for each source grants that source; the whitelist still applies to api
--- client
    fresh_store();
    my @out;
    for my $source (qw(coding chat api)) {
        my $key = tool("key create k-$source --source $source");
        my $r = chat_now('Authorization' => "Bearer $key");
        push @out, "$source: " . summary($r) . " " . ($r->{headers}{'x-key-name'} // '-');
    }
    tool('whitelist add 127.0.0.1');
    my $key = tool('key create k-api2 --source api');
    push @out, "api whitelisted: " . summary(chat_now('X-API-Key' => $key));
    join "\n", @out;
--- client_output
coding: 200 coding k-coding
chat: 200 chat k-chat
api: 403 api {"error":"IP not whitelisted"} k-api
api whitelisted: 200 api



=== TEST 12: an unknown, revoked, disabled or expired key is refused with 401
--- client
    fresh_store();
    my @out;
    push @out, summary(chat_now('Authorization' => 'Bearer sd-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
    my $key = tool('key create bob --source coding');
    push @out, summary(chat_now('Authorization' => "Bearer $key"));
    tool('key disable bob');
    push @out, summary(chat_now('Authorization' => "Bearer $key"));
    tool('key enable bob');
    push @out, summary(chat_now('Authorization' => "Bearer $key"));
    tool('key revoke bob');
    push @out, summary(chat_now('Authorization' => "Bearer $key"));
    my $short = tool('key create brief --source coding --expires 1s');
    select undef, undef, undef, 2.1;
    push @out, summary(chat_now('Authorization' => "Bearer $short"));
    join "\n", @out;
--- client_output
401 api {"error":"invalid API key"}
200 coding
401 api {"error":"API key disabled"}
200 coding
401 api {"error":"invalid API key"}
401 api {"error":"API key expired"}



=== TEST 13: a bearer token that is not a Seadragon key counts as no key
--- client
    fresh_store();
    tool('whitelist add 127.0.0.1');
    join "\n", summary(chat_now('Authorization' => 'Bearer ollama')),
        summary(chat_now('Authorization' => 'Bearer ollama', 'X-Coding' => 1));
--- client_output
200 api
401 coding {"error":"invalid API key"}



=== TEST 14: a key that grants a source this gateway does not have is refused
--- client
    fresh_store();
    my $key = tool('key create old --source retired');
    summary(chat_now('Authorization' => "Bearer $key"));
--- client_output: 401 api {"error":"API key grants a source this gateway does not serve"}
--- error_log
seadragon key "old" grants the source "retired", which is not configured



=== TEST 15: seadragon_pass_key on lets the key through to Ollama
--- config
    seadragon_pass_key on;
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
    }
--- client
    fresh_store();
    my $key = tool('key create passer --source chat');
    my $r = chat_now('Authorization' => "Bearer $key");
    my $h = standin_requests()->[0]{headers};
    $r->{status} . " " . ($h->{authorization} eq "Bearer $key" ? 'passed' : 'missing');
--- client_output: 200 passed



=== TEST 16: the key never appears in the logs
--- log_level: info
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 key;
    seadragon_source api    priority=3;
    log_format keys '$remote_addr "$request" $status $seadragon_source $seadragon_key_name';
--- config
    access_log logs/keys.log keys;
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
    }
--- client
    fresh_store();
    my $key = tool('key create logger --source coding');
    my $ok = chat_now('Authorization' => "Bearer $key");
    tool('key disable logger');
    my $refused = chat_now('Authorization' => "Bearer $key");
    my $log;
    wait_until(sub { $log = access_log_text('keys.log'); ($log =~ tr/\n//) == 2 }, 'two log lines');
    my ($secret) = $key =~ /^sd-(.*)$/;
    my $all = $log . error_log_text() . json_encode(standin_requests());
    join " ", $ok->{status}, $refused->{status},
        ($log =~ /coding logger/ ? 'named' : 'unnamed'),
        (index($all, $secret) >= 0 ? 'LEAKED' : 'absent');
--- client_output: 200 401 named absent



=== TEST 17: two workers see a change through the tool on their next request
--- main_config
    worker_processes 2;
--- http_config eval
$::http_config . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        location /api/ {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
            proxy_set_header Host localhost;
            add_header X-Pid $pid always;
        }
    }
_EOC_
--- client
    fresh_store();
    my $port = $ENV{TEST_NGINX_REUSEPORT_PORT};
    my $round = sub {
        my (%pids, %status);
        for (1 .. 40) {
            my $r = request('POST /api/chat', port => $port,
                body => '{"model":"llama3:70b","messages":[],"stream":false}',
                headers => { 'X-Standin-Tokens' => 1 });
            $pids{ $r->{headers}{'x-pid'} } = 1;
            $status{ $r->{status} }++;
        }
        return (scalar(keys %pids), join(",", map { "$_:$status{$_}" } sort keys %status));
    };
    my ($w1, $s1) = $round->();
    tool('whitelist add 127.0.0.0/8');
    my ($w2, $s2) = $round->();
    "workers=$w1 $s1 / workers=$w2 $s2";
--- client_output: workers=2 403:40 / workers=2 200:40



=== TEST 18: a missing store is an nginx -t error that names the path
--- http_config
    seadragon_store /nonexistent/seadragon/store;
--- config
--- must_die
--- error_log
seadragon_store "/nonexistent/seadragon/store" cannot be opened



=== TEST 19: a corrupt store is an nginx -t error that names the path
--- http_config
    seadragon_store $TEST_NGINX_STORE-corrupt;
--- config
--- must_die
--- error_log eval
qr{seadragon_store "\S+store-corrupt" cannot be opened: data.mdb is not an LMDB file \(overwritten\?\); restore it from a copy}



=== TEST 20: a key source without a condition is reached by its keys alone
--- http_config
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 key;
    seadragon_source api    priority=3;
--- client
    fresh_store();
    my $key = tool('key create solo --source coding');
    join " ", summary(chat_now()), summary(chat_now('Authorization' => "Bearer $key"));
--- client_output: 200 api 200 coding



=== TEST 21: a source that needs a key or a whitelist needs a store
--- http_config
    seadragon_source api priority=3 whitelist;
--- config
--- must_die
--- error_log
seadragon source "api" requires a whitelist, which needs a store: add "seadragon_store PATH"



=== TEST 22: a store that workers cannot reach is an nginx -t error naming the directory, its mode and the workers' user
--- master_on
--- main_config
    user nobody nogroup;
--- http_config
    seadragon_store $TEST_NGINX_STORE-private;
    seadragon_zone ollama:1m;
    seadragon_source api priority=3 whitelist;
--- skip_eval: 1: $> != 0
--- config
--- must_die
--- error_log eval
qr{\[emerg\] seadragon_store "\S+store-private": nginx workers run as "nobody" \(group "nogroup"\) and cannot search the directory "\S+" \(mode 0700, owner root:root\)}
