# The test harness itself (t/lib/Test/Seadragon.pm), against plain nginx:
# no Seadragon module is loaded here.  The blocks that need the stand-in
# Ollama (scripts/ollama-standin.py) are skipped when it is missing.  The
# last block runs a nested file of failing blocks to show that failures
# are reported.
BEGIN { $ENV{TEST_NGINX_LOAD_MODULES} = '' }

use lib 't/lib';
use File::Basename ();
use Test::Seadragon;

our $big = join '', map { sprintf "%07d\n", $_ } 1 .. 2048;   # 16 KiB

our $slow = <<'_EOC_';
    location /slow {
        limit_rate 4k;
        limit_rate_after 0;
        alias html/big.txt;
    }
_EOC_

our $standin = <<'_EOC_';
    location /api/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
_EOC_

sub no_standin_script { !-f standin_script() }

# A block without a config gets this one.
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', "    location / { return 200 \"default\\n\"; }\n")
        unless defined $block->config;
});

run_tests();

__DATA__

=== TEST 1: a plain request gets status and body
--- config
    location / { return 200 "hello"; }
--- request
GET /
--- error_code: 200
--- response_body: hello
--- no_error_log
[error]
[alert]



=== TEST 2: a block preprocessor can fill in a missing section
--- request
GET /anything
--- response_body
default



=== TEST 3: more_headers are sent, response headers compared exactly or by regex
--- config
    location / {
        add_header X-Echo "$http_x_test";
        add_header X-Host "$host";
        return 200 "ok";
    }
--- request
GET /
--- more_headers
X-Test: a value
# a comment line is ignored
--- response_headers
X-Echo: a value
X-Host: localhost
Content-Type: text/plain
!X-Absent
!Transfer-Encoding
--- response_headers_like
Server: ^nginx/\d+\.\d+
Content-Length: ^2$



=== TEST 4: response_body_like is a regex matched with /s
--- config
    location / { return 200 "first line\nsecond line\n"; }
--- request
GET /
--- response_body_like: ^first line\n.*second line$



=== TEST 5: a request body is sent trimmed, with Content-Length
--- http_config
    log_format body '$request_body|$content_length|$http_x_check';
--- config
    location /echo {
        access_log logs/body.log body;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/ok;
    }
    location /ok { return 200 "ok"; }
--- request
POST /echo
  {"model":"llama3:70b"}
--- more_headers
X-Check: $TEST_NGINX_SERVER_PORT
--- response_body: ok
--- client
    my $port = $TEST_NGINX_SERVER_PORT;
    my $log = access_log_text('body.log');
    $log =~ s/\|$port$/|PORT/m;
    $log;
--- client_output
{\x22model\x22:\x22llama3:70b\x22}|22|PORT



=== TEST 6: $TEST_NGINX_ variables are expanded in config, request and client
--- config
    location /port { return 200 "$TEST_NGINX_SERVER_PORT $arg_x"; }
--- request eval
"GET /port?x=" . (40 + 2)
--- response_body_like: ^\d+ 42$
--- client
    my $r = request("GET /port?x=1");
    ($r->{body} eq "$TEST_NGINX_SERVER_PORT 1" ? "same" : "different: $r->{body}")
    . " " . ($TEST_NGINX_SERVER_PORT == server_port() ? "same" : "different");
--- client_output: same same



=== TEST 7: raw_request sends bytes as they are
--- config
    location /raw { return 200 "$server_protocol $http_host"; }
--- raw_request eval
"GET /raw HTTP/1.0\r\nHost: raw.example\r\n\r\n"
--- response_body: HTTP/1.0 raw.example



=== TEST 8: a chunked response is decoded
--- config
    location / {
        sub_filter_types text/plain;
        sub_filter 'cat' 'dog';
        sub_filter_once off;
        return 200 "cat and cat";
    }
--- request
GET /
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body: dog and dog



=== TEST 9: HEAD gets headers only
--- config
    location / { return 200 "a body"; }
--- request
HEAD /
--- response_headers
Content-Length: 6
--- response_body:



=== TEST 10: user_files are written under html/ before nginx starts
--- config
    location / { root html; }
--- user_files
>>> a.txt
file a
>>> sub/b.txt
file b
--- request
GET /sub/b.txt
--- response_body
file b
--- client
    request('GET /a.txt')->{body};
--- client_output: file a



=== TEST 11: error_log and no_error_log, as lines and with eval
--- config
    location / { root html; }
--- request
GET /missing.html
--- error_code: 404
--- error_log
No such file or directory
open()
--- no_error_log
[alert]
[emerg]



=== TEST 12: error_log eval takes regexes and strings
--- config
    location / { root html; }
--- request
GET /missing.html
--- error_code: 404
--- error_log eval
[qr/\[error\] \d+#\d+: \*\d+ open\(\) ".*missing\.html" failed/, "(2: No such file"]
--- no_error_log eval
qr/\[alert\]|\[emerg\]/



=== TEST 13: a configuration nginx refuses, with its message
--- config
    bogus_directive on;
--- must_die
--- error_log
unknown directive "bogus_directive"
--- no_error_log
[alert]



=== TEST 14: must_die also sees errors of http_config
--- http_config
    upstream nowhere { }
--- must_die
--- error_log eval
qr/no servers are inside upstream/



=== TEST 15: http_config is inside http, main_config at the top
--- main_config
    worker_rlimit_nofile 2048;
--- http_config
    map $uri $kind { default "mapped"; }
--- config
    location / { return 200 "$kind"; }
--- request
GET /
--- response_body: mapped
--- client
    my $conf = do { local $/; open my $fh, '<', servroot() . '/conf/nginx.conf' or die $!; <$fh> };
    join " ", ($conf =~ /^\s*worker_rlimit_nofile 2048;\n.*^events \{/ms ? 'main' : 'not main'),
              ($conf =~ /^http \{.*map \$uri.*^    server \{/ms ? 'http' : 'not http'),
              ($conf =~ /^master_process off;$/m ? 'master off' : 'master on');
--- client_output: main http master off



=== TEST 16: without a master there are no workers, and nginx_master_pid serves
--- config
    location / { return 200 "$pid"; }
--- request
GET /
--- client
    my $r = request('GET /');
    join " ", scalar(nginx_worker_pids()), ($r->{body} == nginx_master_pid() ? 'master serves' : 'other');
--- client_output: 0 master serves



=== TEST 17: workers and master_on sections give two workers
--- workers: 2
--- master_on
--- config
    location / { return 200 "$pid"; }
--- client
    my @w = nginx_worker_pids();
    my %seen = map { request('GET /')->{body} => 1 } 1 .. 20;
    my %worker = map { $_ => 1 } @w;
    join " ", scalar(@w),
        (grep({ !$worker{$_} } keys %seen) ? 'a stranger served' : 'workers served');
--- client_output: 2 workers served



=== TEST 18: worker_processes in main_config replaces the harness's own
--- main_config
    worker_processes 3;
--- master_on
--- client
    scalar nginx_worker_pids();
--- client_output: 3



=== TEST 19: nginx_reload replaces the workers and can load a new config
--- master_on
--- config
    location / { return 200 "before"; }
--- client
    my @old = nginx_worker_pids();
    nginx_reload();
    my @same_config = nginx_worker_pids();
    my $a = request('GET /')->{body};
    nginx_reload(config => '    location / { return 200 "after $TEST_NGINX_SERVER_PORT"; }');
    my $b = request('GET /')->{body};
    my %old = map { $_ => 1 } @old, @same_config;
    join " ", $a, ($b eq "after $TEST_NGINX_SERVER_PORT" ? 'after' : "?$b"),
        (grep({ $old{$_} } nginx_worker_pids()) ? 'old workers' : 'new workers'),
        scalar(@same_config);
--- client_output: before after new workers 1
--- no_error_log
[alert]
[emerg]



=== TEST 20: any $TEST_NGINX_*_PORT gets a free port of its own
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT;
        location / { return 200 "extra"; }
    }
--- config
    location / { return 200 "main"; }
--- client
    my $extra = request('GET /', port => $ENV{TEST_NGINX_EXTRA_PORT});
    join " ", request('GET /')->{body}, $extra->{body},
        ($ENV{TEST_NGINX_EXTRA_PORT} != server_port() ? 'two ports' : 'one port');
--- client_output: main extra two ports



=== TEST 21: request() returns status, headers, body and times
--- config
    location / {
        add_header X-One 1;
        add_header X-Multi a;
        add_header X-Multi b;
        return 201 "created";
    }
--- client
    my $t0 = Time::HiRes::time();
    my $r = request('PUT /thing', body => json_encode({ b => 2, a => [1] }),
                    headers => [ 'Content-Type' => 'application/json' ]);
    join " ", $r->{status}, $r->{headers}{'x-one'}, $r->{headers}{'x-multi'},
        $r->{body}, scalar(@{ $r->{chunks} }),
        ($r->{first_byte} >= $t0 && $r->{end} >= $r->{first_byte} ? 'times' : 'no times'),
        (defined $r->{error} ? $r->{error} : 'no error'),
        json_encode(json_decode('{"z":1,"a":"\u00e9"}'));
--- client_output: 201 1 a, b created 1 times no error {"a":"é","z":1}



=== TEST 22: request() reports a refused connection as an error
--- client
    my $r = request('GET /', port => $TEST_NGINX_DEAD_PORT, timeout => 2);
    (defined $r->{status} ? 'status' : 'no status') . " / $r->{error}";
--- client_output_like: ^no status / cannot connect



=== TEST 23: start_request runs requests at once, wait_all collects them
--- config eval
$::slow
--- user_files eval
[[ 'big.txt' => $::big ]]
--- client
    my @h = map { start_request('GET /slow', headers => { 'X-N' => $_ }) } 1 .. 3;
    my @r = wait_all(@h);
    # together: every answer had begun before the first one ended
    my ($last_start) = sort { $b <=> $a } map { $_->{first_byte} } @r;
    my ($first_end) = sort { $a <=> $b } map { $_->{end} } @r;
    join " ", (map { $_->{status} . "/" . length($_->{body}) } @r),
        ($last_start < $first_end ? 'together' : 'one after another');
--- client_output: 200/16384 200/16384 200/16384 together
--- timeout: 15



=== TEST 24: chunks record when each part of the body arrived
--- config eval
$::slow
--- user_files eval
[[ 'big.txt' => $::big ]]
--- client
    my $r = request('GET /slow');
    my @c = @{ $r->{chunks} };
    my $spread = $c[-1][0] - $c[0][0];
    my $joined = join '', map { $_->[1] } @c;
    join " ", (@c >= 3 ? 'several chunks' : scalar(@c) . ' chunks'),
        ($spread > 2 ? 'spread out' : "all at once ($spread s)"),
        ($joined eq $r->{body} ? 'add up' : 'do not add up'),
        ($r->{first_byte} <= $c[0][0] ? 'first byte first' : 'first byte late');
--- client_output: several chunks spread out add up first byte first
--- timeout: 15



=== TEST 25: with abort, a client that gives up at the timeout is not a failure
--- config eval
$::slow
--- user_files eval
[[ 'big.txt' => $::big ]]
--- request
GET /slow
--- timeout: 0.5
--- abort
--- wait: 0.1
--- error_code: 200
--- error_log
client prematurely closed connection while sending response to client



=== TEST 26: abort_request closes a request that is under way and keeps what arrived
--- config eval
$::slow
--- user_files eval
[[ 'big.txt' => $::big ]]
--- client
    my $h = start_request('GET /slow');
    my $other = start_request('GET /slow');
    select undef, undef, undef, 1.2;
    my $r = abort_request($h);
    my $o = wait_request($other);
    join " ", ($r->{aborted} ? 'aborted' : 'not aborted'), $r->{status},
        (length($r->{body}) > 0 && length($r->{body}) < 16384 ? 'partial' : length $r->{body}),
        $o->{status}, length($o->{body}),
        (wait_request($h) == $r ? 'same result' : 'another result');
--- client_output: aborted 200 partial 200 16384 same result
--- timeout: 15



=== TEST 27: wait_until polls, and dies with what it waited for
--- client
    my $n = 0;
    wait_until(sub { ++$n >= 3 }, 'three rounds');
    my $ok = eval { wait_until(sub { 0 }, 'something that never comes', 0.1); 1 };
    "$n " . ($ok ? 'no error' : $@);
--- client_output
3 timed out waiting for something that never comes



=== TEST 28: error_log_text and access_log_text read the logs of the block
--- config
    location / { return 204; }
--- request
GET /logged?marker=1
--- error_code: 204
--- client
    # nginx writes the access log line after the answer has gone out
    my $line = qr{"GET /logged\?marker=1 HTTP/1.1" 204};
    eval { wait_until(sub { access_log_text() =~ $line }, 'the access log line', 5) };
    join " ", (access_log_text() =~ $line ? 'access' : 'no access'),
        (error_log_text() =~ /http request line: "GET \/logged\?marker=1/ ? 'debug' : 'no debug'),
        servroot() eq $ENV{TEST_NGINX_SERVROOT} ? 'servroot' : 'no servroot';
--- client_output: access debug servroot



=== TEST 29: skip_nginx skips a block for other nginx versions
--- skip_nginx: 3: < 999.0
--- config
    location / { return 500; }
--- request
GET /
--- error_code: 200



=== TEST 30: a block marked SKIP does not run
--- SKIP
--- request
GET /
--- error_code: 500



=== TEST 31: log_level sets the level of the error log
--- log_level: info
--- config
    location / { root html; }
--- request
GET /missing.html
--- error_code: 404
--- error_log
[error]
--- no_error_log
[debug]



=== TEST 32: skip_nginx keeps a block for this nginx
--- skip_nginx: > 999.0
--- request
GET /
--- response_body
default



=== TEST 33: no_standin points $TEST_NGINX_OLLAMA_PORT where nothing listens
--- no_standin
--- config eval
$::standin
--- request
GET /api/tags
--- error_code: 502
--- error_log
(111: Connection refused) while connecting to upstream



=== TEST 34: a request through proxy_pass reaches the stand-in Ollama
--- skip_eval: no_standin_script()
--- config eval
$::standin
--- request
POST /api/chat
{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}]}
--- more_headers
X-Standin-Tokens: 3
X-Standin-Tag: first
--- error_code: 200
--- response_headers
Content-Type: application/x-ndjson
--- response_body_like: ^(\{[^\n]*"done":false[^\n]*\}\n){3}\{[^\n]*"done":true[^\n]*\}\n$
--- client
    my $s = standin_requests();
    join " ", scalar(@$s), $s->[0]{tag}, $s->[0]{model}, $s->[0]{path},
        standin_stats()->{served};
--- client_output: 1 first llama3:70b /api/chat 1
--- no_error_log
[error]



=== TEST 35: concurrent requests to the stand-in, with start_request and wait_all
--- skip_eval: no_standin_script()
--- config eval
$::standin
--- client
    my @h = map {
        start_request('POST /api/chat',
            body => json_encode({ model => 'llama3:70b', messages => [] }),
            headers => { 'X-Standin-Tag' => "r$_", 'X-Standin-Tokens' => 3,
                         'X-Standin-Delay-Ms' => 10, 'X-Standin-Hold' => 1 })
    } 1 .. 4;
    # all four at once, however slowly the machine starts them
    wait_until(sub { standin_stats()->{active} == 4 }, 'all four to start');
    standin_release();
    my @r = wait_all(@h);
    my $s = standin_requests();
    my $peak = standin_stats()->{peak};
    standin_reset();
    join " ", (map { $_->{status} } @r),
        join(",", sort map { $_->{tag} } @$s),
        "peak=$peak", 'after reset: ' . scalar(@{ standin_requests() });
--- client_output: 200 200 200 200 r1,r2,r3,r4 peak=4 after reset: 0



=== TEST 36: chunk times follow the stand-in's tokens
--- skip_eval: no_standin_script()
--- config eval
$::standin
--- client
    my $r = request('POST /api/chat', body => '{"model":"llama3:70b","messages":[]}',
                    headers => { 'X-Standin-Tokens' => 6, 'X-Standin-Delay-Ms' => 200 });
    my $s = standin_requests()->[0];
    my @c = @{ $r->{chunks} };
    my $gaps = grep { $c[$_][0] - $c[$_ - 1][0] > 0.1 } 1 .. $#c;
    join " ", scalar(@c) >= 6 ? 'chunks' : 'few chunks: ' . scalar(@c),
        ($gaps >= 5 ? 'spaced' : "gaps=$gaps"),
        ($r->{first_byte} < $s->{end} - 0.5 ? 'first byte early' : 'first byte late');
--- client_output: chunks spaced first byte early



=== TEST 37: a client that leaves is seen by nginx and by the stand-in
--- skip_eval: no_standin_script()
--- config eval
$::standin
--- request
POST /api/chat
{"model":"llama3:70b","messages":[]}
--- more_headers
X-Standin-Tokens: 100
X-Standin-Delay-Ms: 50
--- timeout: 0.6
--- abort
--- error_code: 200
--- error_log
client prematurely closed connection
--- client
    wait_until(sub { standin_requests()->[0]{end} }, 'the stand-in to notice');
    my $s = standin_requests()->[0];
    join " ", ($s->{aborted} ? 'aborted' : 'not aborted'),
        ($s->{tokens_sent} < 100 ? 'cut short' : 'all sent');
--- client_output: aborted cut short



=== TEST 38: the harness reports failures (a nested run of failing blocks)
--- timeout: 60
--- client
    my $dir = servroot() . '/html';
    my $file = "$dir/000-harness-nested.t";
    open my $fh, '>', $file or die $!;
    # %%TEST_NGINX_ stands for $TEST_NGINX_, which the harness would expand
    # in this client code
    print $fh map { s/%%(?=TEST_NGINX_)/\$/gr } <<~'_EOT_';
        BEGIN { $ENV{TEST_NGINX_LOAD_MODULES} = '' }
        use Test::Seadragon;
        use IO::Socket::INET;
        # a port that accepts connections and never answers
        our $stall = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                           Listen => 5) or die $!;
        $ENV{TEST_NGINX_STALL_PORT} = $stall->sockport;
        workers(2);
        master_on();
        repeat_each(2);
        run_tests();
        __DATA__

        === TEST 1: workers(2) and master_on() give two workers
        --- client
            scalar nginx_worker_pids();
        --- client_output: 2

        === TEST 2: a wrong status
        --- config
            location / { return 404; }
        --- request
        GET /
        --- response_body_like: 404

        === TEST 3: a wrong body, header and missing log line
        --- config
            location / { return 200 "yes"; }
        --- request
        GET /
        --- response_headers
        X-Nope: 1
        --- response_body: no
        --- error_log
        this is not in the log
        --- no_error_log
        [debug]

        === TEST 4: must_die with a good configuration
        --- config
            location / { return 200; }
        --- must_die

        === TEST 5: client code that dies
        --- client
            die "on purpose\n";
        --- client_output: never

        === TEST 6: nginx that does not start
        --- config
            bogus_directive on;
        --- request
        GET /

        === TEST 7: a request that times out without abort
        --- config
            location / { proxy_pass http://127.0.0.1:%%TEST_NGINX_STALL_PORT; }
        --- request
        GET /
        --- timeout: 0.3

        === TEST 8: a variable that is not set
        --- config
            location / { return 200 "%%TEST_NGINX_NOT_SET_ANYWHERE"; }
        --- request
        GET /

        === TEST 9: a worker that crashes
        --- main_config
            worker_rlimit_core 0;
        --- client
            kill 'SEGV', nginx_worker_pids();
            wait_until(sub { error_log_text() =~ /exited on signal 11/ }, 'the crash');
            'crashed';
        --- client_output: crashed

        === TEST 10: nginx that is gone before the end
        --- master_off
        --- client
            kill 'KILL', nginx_master_pid();
            select undef, undef, undef, 0.2;
            'killed';
        --- client_output: killed

        === TEST 11: the workers of a master that died
        --- client
            open my $fh, '>', servroot() . '/../000-harness-orphans.txt' or die $!;
            print $fh join ' ', nginx_worker_pids();
            close $fh;
            kill 'KILL', nginx_master_pid();
            select undef, undef, undef, 0.2;
            'killed';
        --- client_output: killed
        _EOT_
    close $fh;

    local %ENV = %ENV;
    delete $ENV{$_} for grep { /^TEST_NGINX_/ && !/^TEST_NGINX_(BINARY|STANDIN|USE_VALGRIND)$/ } keys %ENV;
    my $base = File::Basename::dirname(servroot());
    $ENV{TEST_NGINX_SERVROOT} = $base;
    unlink "$base/000-harness-orphans.txt";
    my $lib = "$TEST_NGINX_REPO/t/lib";
    my $tap = `$^X -I$lib $file 2>$dir/nested.err`;
    my @lines = map { /^(not ok|ok) \d+ - (.*)$/ ? "$1 - $2" : /^(1\.\.\d+)$/ ? $1 : () }
                split /\n/, $tap;
    my %seen;
    my @orphans = split ' ', do { local (@ARGV, $/) = "$base/000-harness-orphans.txt"; <> // '' };
    join "\n", (grep { !$seen{$_}++ } @lines),
        scalar(@orphans) . " workers, " . scalar(grep { kill 0, $_ } @orphans) . " left";
--- client_output
ok - TEST 1: workers(2) and master_on() give two workers - client_output is expected
not ok - TEST 2: a wrong status - status code ok
ok - TEST 2: a wrong status - response_body_like - response is expected
ok - TEST 3: a wrong body, header and missing log line - status code ok
not ok - TEST 3: a wrong body, header and missing log line - header X-Nope ok
not ok - TEST 3: a wrong body, header and missing log line - response_body - response is expected
not ok - TEST 3: a wrong body, header and missing log line - pattern "this is not in the log" matches a line in error.log
not ok - TEST 3: a wrong body, header and missing log line - pattern "[debug]" does not match any line in error.log
not ok - TEST 4: must_die with a good configuration - nginx -t refuses the configuration
not ok - TEST 5: client code that dies - client code runs
not ok - TEST 6: nginx that does not start - nginx starts
not ok - TEST 7: a request that times out without abort - response received
not ok - TEST 7: a request that times out without abort - status code ok
not ok - TEST 8: a variable that is not set - the block runs
ok - TEST 9: a worker that crashes - client_output is expected
not ok - TEST 9: a worker that crashes - no nginx process crashed
ok - TEST 10: nginx that is gone before the end - client_output is expected
not ok - TEST 10: nginx that is gone before the end - nginx is still running at the end of the block
ok - TEST 11: the workers of a master that died - client_output is expected
not ok - TEST 11: the workers of a master that died - nginx is still running at the end of the block
1..40
2 workers, 0 left
