# Attacks on the logins (issue 16), as a stranger would make them: the
# bearer word and its spaces, two credentials, a token in the query
# string; tokens of 4096 and 4097 bytes, of deep or huge claims, of a
# "sub" given twice or with a NUL; forms and headers of a megabyte; more
# logins than the thread pool's queue holds; a worker killed while its
# hashes wait; GET /auth/queue by another user and with a thousand parked
# requests; a user disabled while its request is parked; the rate limit
# against names in other cases and X-Forwarded-For without realip; the
# store truncated under a login; the admin API's users with a chat
# user's token and from another site.  After each: the users' database
# byte for byte, the queue, the counters, what the stand-in received, the
# workers, and an error log without [alert] or [crit].  TEST 5, 6, 14
# and 15 need hashes still waiting in the pool when the next step comes;
# under valgrind, which runs one thread at a time, they are done by then
# (or take longer than the client waits), and the blocks are skipped
# there.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::Logins qw(user_add form_escape users_dump jwt_secret jwt tasks_done);
use Digest::SHA qw(hmac_sha256);
use File::Copy ();
use IO::Socket::INET ();
use MIME::Base64 qw(encode_base64url);

if (!-x store_tool_path()) {
    require Test::More;
    Test::More::plan(skip_all => "build/seadragon-store is not built: run make");
}

for my $util (qw(mdb_dump)) {
    next if grep { -x "$_/$util" } split /:/, $ENV{PATH};
    require Test::More;
    Test::More::plan(skip_all => "$util is missing");
}

worker_connections(4096);

our $StoreDir = store_init();
sub tool { store_tool(@_) }

user_add('alice', 'chat', 'alice pass');
user_add('bob', 'coding', 'bob pass');
user_add('carol', 'chat', 'carol pass');
user_add('root', 'admin', 'root pass');

our %Key = (
    chat  => tool('key create chatkey --source chat'),
    admin => tool('key create ops --source admin'),
);

# a good copy of the store, for the block that truncates it
mkdir "$StoreDir/good" or die $!;
File::Copy::copy("$ENV{TEST_NGINX_STORE}/data.mdb", "$StoreDir/good/data.mdb")
    or die $!;

our $http_config = <<'_EOC_';
    seadragon_store  $TEST_NGINX_STORE;
    seadragon_zone   ollama:4m capacity=1 max_queued=4000;
    map $http_user_agent $is_coding {
        default         0;
        "~*continue"    1;
    }
    seadragon_source coding priority=1 if=$is_coding key;
    seadragon_source chat   priority=2 if=$http_x_chat key;
    seadragon_source api    priority=3;
    log_format creds '$http_x_standin_tag source=$seadragon_source '
                     'user=$seadragon_user key=$seadragon_key_name '
                     'status=$status';
_EOC_

our $config = <<'_EOC_';
    seadragon_json_errors on;
    access_log logs/creds.log creds;
    location /auth/ {
        seadragon_auth ollama thread_pool=logins attempts=off;
    }
    location /limited/ {
        seadragon_auth ollama thread_pool=logins attempts=2/1m;
    }
    location /small/ {
        client_body_buffer_size 1k;
        seadragon_auth ollama thread_pool=logins attempts=off;
    }
    location /admin/ {
        seadragon_admin ollama thread_pool=logins;
    }
    location /api/admin/ {
        allow 127.0.0.1;
        deny all;
        seadragon_admin ollama auth=nginx;
    }
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT/api/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
    }
_EOC_

our $main_config = <<'_EOC_';
    thread_pool logins threads=1;
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
    $block->set_value("main_config", $main_config)
        unless defined $block->main_config;
});

our $chat_body = '{"model":"llama3:70b","messages":'
                 . '[{"role":"user","content":"hi"}],"stream":false}';

chat_defaults(body => $chat_body, 'X-Standin-Tokens' => 1,
              'X-Standin-Delay-Ms' => 0);

sub form { 'username=' . form_escape($_[0]) . '&password=' . form_escape($_[1]) }

sub login {
    my ($name, $password, %headers) = @_;
    return request('POST /auth/token', body => form($name, $password),
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     %headers });
}

sub start_login {
    my ($name, $password) = @_;
    return start_request('POST /auth/token', body => form($name, $password),
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
}

sub token_of {
    my ($name) = @_;
    my $r = login($name, "$name pass");
    die "login of $name: " . said($r) unless $r->{status} == 200;
    return json_decode($r->{body})->{access_token};
}

sub me_with { request('GET /auth/me', headers => [@_]) }

sub ask {
    my ($tag, @headers) = @_;
    return request('POST /api/chat', body => $chat_body,
                   headers => ['X-Standin-Tag' => $tag, 'X-Standin-Tokens' => 1,
                               @headers]);
}

our $HS256 = '{"alg":"HS256","typ":"JWT"}';

# claims as JSON text, "sub" and the rest given as text too
sub claims_text {
    my (%c) = @_;
    my $now = time;
    return '{"sub":' . ($c{sub} // '"alice"') . ',"src":"chat","iat":'
           . ($c{iat} // $now) . ',"exp":' . ($c{exp} // $now + 600)
           . ($c{more} // '') . '}';
}

sub pids { join ' ', sort { $a <=> $b } nginx_worker_pids() }

sub queue_of {
    my $q = admin_queue();
    return "processing=$q->{processing} queue_length=$q->{queue_length}";
}

# the state a refusal must leave: users, queue, what Ollama got
sub state_now {
    return join '|', users_dump(), queue_of(), scalar @{ standin_requests() };
}

sub no_credential_upstream {
    my @seen = grep { exists $_->{headers}{authorization}
                      || exists $_->{headers}{'x-api-key'} }
               @{ standin_requests() };
    return @seen ? 'Ollama got a credential' : 'no credential upstream';
}

# a login's answer: status and error, Retry-After
sub said_login {
    my ($r) = @_;
    my $e = eval { json_decode($r->{body}) } // {};
    return "$r->{status} " . ($e->{error} // ($r->{body} =~ /^\s*</ ? 'html' : '-'))
           . (defined $r->{headers}{'retry-after'}
              ? " retry=$r->{headers}{'retry-after'}" : '');
}

# n requests parked on one socket each (the gate held), with no child
# process per request: [socket, ...]
sub park {
    my ($n, @headers) = @_;
    my @socks;
    my $hdr = '';
    while (@headers) {
        my ($k, $v) = splice @headers, 0, 2;
        $hdr .= "$k: $v\r\n";
    }
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => server_port(),
                                      Proto => 'tcp') or die "connect: $!";
        print $s "POST /api/chat HTTP/1.1\r\nHost: localhost\r\n$hdr"
                 . "Content-Type: application/json\r\n"
                 . "Content-Length: " . length($chat_body) . "\r\n\r\n"
                 . $chat_body;
        push @socks, $s;
    }
    return \@socks;
}

# HTTP/2 without TLS, from Node: N logins on one connection; at "go" on
# its input, the first stream is reset (RST_STREAM CANCEL), or the whole
# connection destroyed ("drop"); one line of JSON per stream at the end
our $h2_script = <<'_EOJ_';
'use strict';
const http2 = require('http2');
const [authority, n, mode] = process.argv.slice(2);
const net = require('net');
const url = new URL(authority);
const sock = net.connect(Number(url.port), url.hostname);
const session = http2.connect(authority, { createConnection: () => sock });
session.on('error', () => {});
const results = [];
const streams = [];
let left = Number(n);
const done = (i, o) => {
    if (results[i]) return;
    results[i] = o;
    if (--left === 0) {
        process.stdout.write(JSON.stringify(results) + '\n');
        process.exit(0);
    }
};
for (let i = 0; i < Number(n); i++) {
    const st = session.request({ ':method': 'POST', ':path': '/h2/token',
        'content-type': 'application/x-www-form-urlencoded' });
    let status = 0;
    const chunks = [];
    st.on('response', (h) => { status = h[':status']; });
    st.on('data', (c) => chunks.push(c));
    st.on('end', () => done(i, { status, body: Buffer.concat(chunks).toString() }));
    st.on('close', () => done(i, { status, closed: 1 }));
    st.on('error', () => done(i, { status, error: 1 }));
    st.end('username=alice&password=alice+pass');
    streams.push(st);
}
process.stdout.write('sent\n');
process.stdin.once('data', () => {
    if (mode === 'drop') {
        sock.destroy();
    } else {
        streams[0].close(http2.constants.NGHTTP2_CANCEL);
    }
});
_EOJ_

sub h2_logins {
    my ($n, $mode, $posted) = @_;
    my $js = servroot() . '/h2-logins.js';
    open my $fh, '>', $js or die "$js: $!";
    print $fh $h2_script;
    close $fh;
    require IPC::Open2;
    my ($out, $in);
    my $pid = IPC::Open2::open2($out, $in, 'node', $js,
                                "http://127.0.0.1:$ENV{TEST_NGINX_H2_PORT}", $n, $mode);
    $in->autoflush(1);
    my $line = <$out> // die "the HTTP/2 client ended";
    $posted->();
    print $in "go\n";
    $line = <$out> // die "the HTTP/2 client ended";
    close $in;
    waitpid $pid, 0;
    return json_decode($line);
}

sub waiting { admin_queue()->{queue_length} }

run_tests();

__DATA__

=== TEST 1: the bearer word in any case, extra spaces and a tab are a token; the query string and X-API-Key on me are none; nothing reaches Ollama
--- client
my $t = token_of('alice');
my $before = users_dump();
my @out;
for my $case (['Bearer ', 'Bearer '], ['bearer ', 'bearer '], ['BEARER ', 'BEARER '],
              ['two spaces', 'Bearer  '], ['tab', "Bearer\t"]) {
    my $r = me_with(Authorization => $case->[1] . $t);
    push @out, "$case->[0]: " . said_login($r);
}
push @out, 'X-API-Key on me: ' . said_login(me_with('X-API-Key' => $t));
push @out, 'query string: ' . said_login(request("GET /auth/me?access_token=$t"));
push @out, 'Bearer alone: ' . said_login(me_with(Authorization => 'Bearer'));
push @out, 'Bearer and spaces: ' . said_login(me_with(Authorization => 'Bearer    '));
# the same on the queue: a token after a tab is a credential too, and never
# reaches Ollama
my $r1 = ask('lower', Authorization => "bearer $t");
my $r2 = ask('tab', Authorization => "Bearer\t$t");
my $r3 = ask('query', 'X-Chat' => 1);
my $log = access_log_text('creds.log');
push @out, map { my ($l) = $log =~ /^(\Q$_\E .*)$/m; $l // "$_ missing" } qw(lower tab);
my ($tab) = grep { ($_->{headers}{'x-standin-tag'} // '') eq 'tab' } @{ standin_requests() };
push @out, 'the tab header reached Ollama: '
    . (($tab->{headers}{authorization} // '') eq "Bearer\t$t" ? 'yes' : 'no');
push @out, 'users ' . (users_dump() eq $before ? 'unchanged' : 'changed');
join "\n", @out
--- client_output
Bearer : 200 -
bearer : 200 -
BEARER : 200 -
two spaces: 200 -
tab: 200 -
X-API-Key on me: 401 Not authenticated
query string: 401 Not authenticated
Bearer alone: 401 Not authenticated
Bearer and spaces: 401 Not authenticated
lower source=chat user=alice key=- status=200
tab source=chat user=alice key=- status=200
the tab header reached Ollama: no
users unchanged
--- no_error_log
[alert]
[crit]



=== TEST 2: two credentials: the first decides, whichever kind it is, and neither reaches Ollama; a bearer word first hides a token after it
--- client
my $alice = token_of('alice');
my $bob = token_of('bob');
my $before = users_dump();
my @cases = (
    ['two-authorizations', Authorization => "Bearer $Key{chat}", Authorization => "Bearer $bob", 'User-Agent' => 'continue'],
    ['key-then-token', 'X-API-Key' => $Key{chat}, Authorization => "Bearer $bob", 'User-Agent' => 'continue'],
    ['token-then-key', Authorization => "Bearer $bob", 'X-API-Key' => $Key{chat}, 'User-Agent' => 'continue'],
    ['token-then-apikey', Authorization => "Bearer $alice", 'X-API-Key' => $bob],
    ['apikey-then-token', 'X-API-Key' => $bob, Authorization => "Bearer $alice"],
    ['word-then-token', Authorization => 'Bearer ollama', 'X-API-Key' => $alice, 'X-Chat' => 1],
    ['token-then-bad', Authorization => "Bearer $alice", 'X-API-Key' => 'sd-0000'],
    ['bad-then-token', 'X-API-Key' => 'sd-0000', Authorization => "Bearer $alice"],
);
my @out;
for my $c (@cases) {
    my ($tag, @h) = @$c;
    my $r = ask($tag, @h);
    push @out, "$tag: $r->{status}";
}
my $log = access_log_text('creds.log');
push @out, map { my ($l) = $log =~ /^(\Q$_->[0]\E .*)$/m; $l // "$_->[0] missing" } @cases;
push @out, no_credential_upstream(),
    'me with a key first: ' . said_login(me_with(Authorization => "Bearer $Key{chat}", Authorization => "Bearer $alice")),
    'users ' . (users_dump() eq $before ? 'unchanged' : 'changed');
join "\n", @out
--- client_output
two-authorizations: 400
key-then-token: 200
token-then-key: 200
token-then-apikey: 200
apikey-then-token: 200
word-then-token: 401
token-then-bad: 200
bad-then-token: 401
two-authorizations source=chat user=- key=chatkey status=400
key-then-token source=chat user=- key=chatkey status=200
token-then-key source=coding user=bob key=- status=200
token-then-apikey source=chat user=alice key=- status=200
apikey-then-token source=coding user=bob key=- status=200
word-then-token source=chat user=- key=- status=401
token-then-bad source=chat user=alice key=- status=200
bad-then-token source=api user=- key=- status=401
no credential upstream
me with a key first: 400 bad request: malformed, or its headers are too large
users unchanged
--- no_error_log
[alert]
[crit]



=== TEST 3: tokens at the edge: 4096 bytes signed reaches the claims' check, 4097 is no token; deep, huge, doubled and NUL claims are refused; nothing changes
--- client
my $key = jwt_secret();
my $now = time;
my $base = jwt($key, $HS256, claims_text());
# short claims of padding, so that the token is exactly N bytes
sub sized {
    my ($key, $n) = @_;
    for my $m (0 .. 80) {
        for my $last (0 .. 40) {
            my $more = join '', map { ",\"p$_\":\"" . ('x' x 40) . '"' } 1 .. $m;
            $more .= ',"q":"' . ('x' x $last) . '"';
            my $t = jwt($key, $HS256, claims_text(more => $more));
            return $t if length $t == $n;
        }
    }
    die "no token of $n bytes";
}
my $t4096 = sized($key, 4096);
my $t4097 = sized($key, 4097);
my $before = users_dump();
my %tokens = (
    '4096 bytes' => $t4096,
    '4097 bytes' => $t4097,
    'deep claim' => jwt($key, $HS256, claims_text(more => ',"x":' . ('[' x 2000) . (']' x 2000))),
    'deep object' => jwt($key, $HS256, claims_text(more => ',"x":' . ('{"a":' x 500) . '1' . ('}' x 500))),
    'huge exp' => jwt($key, $HS256, claims_text(exp => '1' . ('0' x 400))),
    'exp 2^64' => jwt($key, $HS256, claims_text(exp => '18446744073709551616')),
    'exp float' => jwt($key, $HS256, claims_text(exp => ($now + 600) . '.5')),
    'exp 1e3' => jwt($key, $HS256, claims_text(exp => '1e10')),
    'negative iat' => jwt($key, $HS256, claims_text(iat => -5)),
    'sub twice' => jwt($key, $HS256, claims_text(more => ',"sub":"bob"')),
    'sub NUL' => jwt($key, $HS256, claims_text(sub => '"alice\u0000x"')),
    'sub NUL end' => jwt($key, $HS256, claims_text(sub => '"alice\u0000"')),
    'sub number' => jwt($key, $HS256, claims_text(sub => '7')),
    'sub array' => jwt($key, $HS256, claims_text(sub => '["alice"]')),
    'sub escaped' => jwt($key, $HS256, claims_text(sub => '"\u0061lice"')),
    'sub 64 bytes' => jwt($key, $HS256, claims_text(sub => '"' . ('a' x 64) . '"')),
    'alg twice' => jwt($key, '{"alg":"HS256","alg":"none"}', claims_text()),
    'header array' => jwt($key, '["HS256"]', claims_text()),
    'claims array' => jwt($key, $HS256, '[1]'),
    'trailing garbage' => jwt($key, $HS256, claims_text() . 'x'),
    'two objects' => jwt($key, $HS256, claims_text() . '{}'),
    'padding =' => $base . '=',
    'four parts' => "$base.x",
);
my @out;
for my $name (sort keys %tokens) {
    my $me = me_with(Authorization => "Bearer $tokens{$name}");
    my $q = ask($name =~ s/ /-/gr, Authorization => "Bearer $tokens{$name}", 'X-Chat' => 1);
    push @out, sprintf '%-16s me %s | chat %s (%d bytes)', $name, said_login($me),
                       said_login($q), length $tokens{$name};
}
push @out, no_credential_upstream(), 'users ' . (users_dump() eq $before ? 'unchanged' : 'changed');
join "\n", @out
--- client_output
4096 bytes       me 401 Could not validate credentials | chat 401 invalid login token (4096 bytes)
4097 bytes       me 401 Could not validate credentials | chat 401 invalid API key (4097 bytes)
alg twice        me 401 Could not validate credentials | chat 401 invalid login token (166 bytes)
claims array     me 401 Could not validate credentials | chat 401 invalid login token (85 bytes)
deep claim       me 401 Could not validate credentials | chat 401 invalid API key (5504 bytes)
deep object      me 401 Could not validate credentials | chat 401 invalid API key (4172 bytes)
exp 1e3          me 401 Could not validate credentials | chat 401 invalid login token (156 bytes)
exp 2^64         me 401 Could not validate credentials | chat 401 invalid login token (177 bytes)
exp float        me 401 Could not validate credentials | chat 401 invalid login token (167 bytes)
four parts       me 401 Could not validate credentials | chat 401 invalid API key (166 bytes)
header array     me 401 Could not validate credentials | chat 401 invalid login token (140 bytes)
huge exp         me 401 Could not validate credentials | chat 401 invalid login token (685 bytes)
negative iat     me 401 Could not validate credentials | chat 401 invalid login token (153 bytes)
padding =        me 401 Could not validate credentials | chat 401 invalid API key (165 bytes)
sub 64 bytes     me 401 Could not validate credentials | chat 401 invalid login token (243 bytes)
sub NUL          me 401 Could not validate credentials | chat 401 invalid login token (173 bytes)
sub NUL end      me 401 Could not validate credentials | chat 401 invalid login token (172 bytes)
sub array        me 401 Could not validate credentials | chat 401 invalid login token (167 bytes)
sub escaped      me 200 - | chat 200 - (171 bytes)
sub number       me 401 Could not validate credentials | chat 401 invalid login token (156 bytes)
sub twice        me 401 Could not validate credentials | chat 401 invalid login token (180 bytes)
trailing garbage me 401 Could not validate credentials | chat 401 invalid login token (165 bytes)
two objects      me 401 Could not validate credentials | chat 401 invalid login token (167 bytes)
no credential upstream
users unchanged
--- error_log
a token refused: too many or too long members
a token refused: token too long
a token refused: a member twice
a token refused: sub is not a user name
--- no_error_log
[alert]
[crit]



=== TEST 4: a megabyte of header, of form, of name and of password: JSON refusals or nginx's 400, at most one hash each, nothing written
--- client
my $before = users_dump();
my $done = tasks_done();
my @out;
for my $size (1 << 20, 16 << 20) {
    my $r = request('GET /auth/me', headers => [Authorization => 'Bearer ' . ('a' x $size)], timeout => 20);
    push @out, "Authorization of $size bytes: " . ($r->{status} // 'no answer') . ' '
        . ($r->{status} && $r->{body} =~ /^\s*\{/ ? 'json' : 'not json');
}
my $big = form('alice', 'x' x (1 << 20));
push @out, 'a 1 MB form: ' . said_login(request('POST /auth/token', body => $big,
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }));
my $chunked = "POST /auth/token HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
for (my $i = 0; $i < length $big; $i += 65536) {
    my $c = substr $big, $i, 65536;
    $chunked .= sprintf("%x\r\n", length $c) . "$c\r\n";
}
$chunked .= "0\r\n\r\n";
push @out, 'a 1 MB chunked form: ' . said_login(request('POST /auth/token', raw => $chunked));
my $mid = form('alice', 'alice pass') . '&scope=' . ('s' x 3000);
my $small = form('alice', 'alice pass');
my $pieces = "POST /auth/token HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    . join('', map { sprintf("%x\r\n", length $_) . "$_\r\n" } $small =~ /(.{1,5})/g) . "0\r\n\r\n";
push @out, 'a form in chunks of 5 bytes: ' . said_login(request('POST /auth/token', raw => $pieces));
push @out, 'a 3 KB form, 1k body buffer: ' . said_login(request('POST /small/token', body => $mid,
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }));
push @out, 'a 3 KB form, default buffer: ' . said_login(request('POST /auth/token', body => $mid,
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }));
$before = users_dump();
my $hashes = tasks_done() - $done;
push @out, "hashes so far: $hashes";
$done = tasks_done();
push @out, 'a 1025-byte password: ' . said_login(login('alice', 'p' x 1025));
push @out, "hashes: " . (tasks_done() - $done);
push @out, 'a 4000-byte name: ' . said_login(login('a' x 4000, 'alice pass'));
push @out, 'a NUL in the name: ' . said_login(request('POST /auth/token', body => 'username=alice%00&password=alice+pass',
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }));
push @out, 'a NUL after the password: ' . said_login(request('POST /auth/token', body => 'username=alice&password=alice+pass%00',
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }));
push @out, 'a half escape: ' . said_login(request('POST /auth/token', body => 'username=alice&password=alice+pass%0',
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }));
wait_until(sub { tasks_done() - $done == 3 }, 'three hashes');
push @out, "hashes: " . (tasks_done() - $done);
push @out, 'users ' . (users_dump() eq $before ? 'unchanged' : 'changed'),
    'then alice logs in: ' . said_login(login('alice', 'alice pass'));
join "\n", @out
--- timeout: 30
--- client_output
Authorization of 1048576 bytes: 400 json
Authorization of 16777216 bytes: 400 json
a 1 MB form: 413 the login form is too large: at most 4096 bytes
a 1 MB chunked form: 413 the login form is too large: at most 4096 bytes
a form in chunks of 5 bytes: 200 -
a 3 KB form, 1k body buffer: 413 the login form is too large: at most 4096 bytes
a 3 KB form, default buffer: 200 -
hashes so far: 2
a 1025-byte password: 401 Incorrect username or password
hashes: 0
a 4000-byte name: 401 Incorrect username or password
a NUL in the name: 401 Incorrect username or password
a NUL after the password: 401 Incorrect username or password
a half escape: 400 the login form is not valid application/x-www-form-urlencoded
hashes: 3
users unchanged
then alice logs in: 200 -
--- no_error_log
[alert]
[crit]



=== TEST 5: more logins than the thread pool's queue holds: 503 JSON with Retry-After 1 for the rest, none hangs, the next login works
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- main_config
    thread_pool logins threads=1 max_queue=2;
--- client
my @h = map { start_login('alice', 'alice pass') } 1 .. 8;
my @r = wait_all(@h);
my %n;
my @bad;
for my $r (@r) {
    my $s = said_login($r);
    $n{$r->{status} // 'none'}++;
    push @bad, $s unless $s eq '200 -' || $s eq '503 too many logins at once: try again retry=1';
}
my $next = login('bob', 'bob pass');
join "\n", (@bad ? "odd answers: @bad" : 'every answer a token or the 503'),
    'some refused: ' . ($n{503} ? 'yes' : 'no'),
    'at least the pool and its queue served: ' . (($n{200} // 0) >= 3 ? 'yes' : 'no'),
    'next: ' . said_login($next), queue_of()
--- client_output
every answer a token or the 503
some refused: yes
at least the pool and its queue served: yes
next: 200 -
processing=0 queue_length=0
--- error_log
queue overflow
--- no_error_log
[alert]
[crit]



=== TEST 6: a worker killed while its hashes wait in the pool: its clients are cut, nothing is written, the new worker logs in at once
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- workers: 1
--- master_on
--- client
my $before = users_dump();
my $old = pids();
my @h = map { start_login('alice', 'alice pass') } 1 .. 3;
wait_until(sub { error_log_text() =~ /(added to thread pool "logins".*){3}/s },
           'three hashes posted');
kill 'KILL', $old or die "kill: $!";
wait_until(sub { my $p = pids(); $p ne '' && $p ne $old }, 'a new worker');
my @r = wait_all(@h);
my $cut = grep { !defined $_->{status} || $_->{status} != 200 } @r;
my $same = users_dump() eq $before ? 'unchanged' : 'changed';
my $r = login('alice', 'alice pass');
my $t = json_decode($r->{body})->{access_token};
my $chat = ask('after', Authorization => "Bearer $t");
join "\n", "cut: $cut of 3", "users $same", 'next: ' . said_login($r),
    'its token: ' . said_login($chat), queue_of()
--- client_output
cut: 3 of 3
users unchanged
next: 200 -
its token: 200 -
processing=0 queue_length=0
--- no_error_log eval
[qr/\[crit\]/, qr/\[alert\](?!.*exited on signal 9)/]



=== TEST 7: GET /auth/queue lists only the token's own requests, at most 16, among a thousand parked; a key or no token lists nothing
--- timeout: 60
--- client
my $alice = token_of('alice');
my $bob = token_of('bob');
my $carol = token_of('carol');
my $hold = hold_gate();
my @socks;
push @socks, @{ park(2, Authorization => "Bearer $alice", 'X-Chat' => 1) };
push @socks, @{ park(1, Authorization => "Bearer $bob", 'User-Agent' => 'continue') };
push @socks, @{ park(20, Authorization => "Bearer $carol") };
push @socks, @{ park(1000) };
wait_until(sub { waiting() == 1023 }, '1023 parked', 40);
sub queue_by {
    my $r = request('GET /auth/queue', headers => [@_]);
    return said_login($r) if $r->{status} != 200;
    my $q = json_decode($r->{body});
    my %src;
    $src{$_->{source}}++ for @{ $q->{waiting} };
    return scalar(@{ $q->{waiting} }) . " listed (" . join(',', map { "$_=$src{$_}" } sort keys %src)
        . ") more=$q->{more} total=$q->{total}, " . (length $r->{body} < 2048 ? 'small' : 'large');
}
my @out = ('alice: ' . queue_by(Authorization => "Bearer $alice"),
           'bob: ' . queue_by(Authorization => "Bearer $bob"),
           'carol: ' . queue_by(Authorization => "Bearer $carol"),
           'a key: ' . queue_by(Authorization => "Bearer $Key{chat}"),
           'a token as X-API-Key: ' . queue_by('X-API-Key' => $alice),
           'none: ' . queue_by());
close $_ for @socks;
wait_until(sub { waiting() == 0 }, 'the line empty', 40);
my $r = release_gate($hold);
push @out, "hold: $r->{status}", 'Ollama got ' . scalar(@{ standin_requests() }), queue_of();
join "\n", @out
--- client_output
alice: 2 listed (chat=2) more=0 total=1023, small
bob: 1 listed (coding=1) more=0 total=1023, small
carol: 16 listed (chat=16) more=4 total=1023, small
a key: 401 Could not validate credentials
a token as X-API-Key: 401 Not authenticated
none: 401 Not authenticated
hold: 200
Ollama got 1
processing=0 queue_length=0
--- no_error_log
[alert]
[crit]



=== TEST 8: a user disabled while its request is parked: the parked request is served (it was let in when it came), the user's next request and its queue are refused; enabled again, the old token stays refused and a new login is served
--- client
my $alice = token_of('alice');
# a token's iat and the disable's time are whole seconds
select(undef, undef, undef, 1.1);
my $hold = hold_gate();
my $h = start_request('POST /api/chat', body => $chat_body,
    headers => ['X-Standin-Tag' => 'parked', 'X-Standin-Tokens' => 1, Authorization => "Bearer $alice"]);
wait_until(sub { waiting() == 1 }, 'alice parked');
tool('user disable alice');
my $q = request('GET /auth/queue', headers => [Authorization => "Bearer $alice"]);
my $next = ask('next', Authorization => "Bearer $alice");
my $hr = release_gate($hold);
my $r = wait_request($h);
tool('user enable alice');
my $again = ask('again', Authorization => "Bearer $alice");
my $anew = ask('anew', Authorization => 'Bearer ' . token_of('alice'));
join "\n", 'queue: ' . said_login($q), 'next: ' . said_login($next),
    'parked: ' . said_login($r), 'served: ' . served_tags(),
    'enabled again, the old token: ' . said_login($again),
    'a new login: ' . said_login($anew)
--- client_output
queue: 403 Inactive user
next: 401 user disabled
parked: 200 -
served: hold,parked,anew
enabled again, the old token: 401 invalid login token
a new login: 200 -
--- no_error_log
[alert]
[crit]



=== TEST 9: the limit is not bypassed by X-Forwarded-For without realip, and a name in other letters is another name that never logs in
--- client
my $before = users_dump();
my $done = tasks_done();
sub limited {
    my ($name, $password, $from) = @_;
    return said_login(request('POST /limited/token', body => form($name, $password),
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     'X-Forwarded-For' => $from }));
}
my @out = ('ALICE, right password: ' . limited('ALICE', 'alice pass', '10.0.0.1'),
           'alice, wrong: ' . limited('alice', 'nope', '10.0.0.2'),
           'alice, right, a third address: ' . limited('alice', 'alice pass', '10.0.0.3'),
           'Alice, right, a fourth: ' . limited('Alice', 'alice pass', '10.0.0.4'));
wait_until(sub { tasks_done() - $done == 2 }, 'two hashes');
s/retry=\d+/retry=N/ for @out;
join "\n", @out, 'hashes: ' . (tasks_done() - $done),
    'users ' . (users_dump() eq $before ? 'unchanged' : 'changed')
--- client_output
ALICE, right password: 401 Incorrect username or password
alice, wrong: 401 Incorrect username or password
alice, right, a third address: 429 Too many login attempts retry=N
Alice, right, a fourth: 429 Too many login attempts retry=N
hashes: 2
users unchanged
--- no_error_log
[alert]
[crit]



=== TEST 10: the admin API's users: a chat user's token and a chat key are refused, a PATCH to admin by oneself too; an admin's write from another site is refused; nothing changes
--- client
my $alice = token_of('alice');
my $root = token_of('root');
my $before = users_dump();
sub adm {
    my ($method, $path, $body, @h) = @_;
    my $r = request("$method /admin/$path", (defined $body ? (body => $body) : ()),
        headers => ['Content-Type' => 'application/json', @h]);
    my $e = eval { json_decode($r->{body}) } // {};
    return "$r->{status}" . ($r->{status} >= 400 ? " $e->{error}" : '');
}
my @out = (
    'alice lists: ' . adm('GET', 'users', undef, Authorization => "Bearer $alice"),
    'alice adds: ' . adm('POST', 'users', '{"name":"mallory","source":"admin","password":"mallory pass"}', Authorization => "Bearer $alice"),
    'alice makes herself admin: ' . adm('PATCH', 'users/alice', '{"source":"admin"}', Authorization => "Bearer $alice"),
    'alice as X-API-Key: ' . adm('PATCH', 'users/alice', '{"source":"admin"}', 'X-API-Key' => $alice),
    'a chat key: ' . adm('PATCH', 'users/alice', '{"source":"admin"}', Authorization => "Bearer $Key{chat}"),
    'root cross-site: ' . adm('PATCH', 'users/alice', '{"source":"admin"}', Authorization => "Bearer $root", 'Sec-Fetch-Site' => 'cross-site'),
    'root from another origin: ' . adm('POST', 'users', '{"name":"mallory","source":"admin","password":"mallory pass"}', Authorization => "Bearer $root", Origin => 'https://evil.example'),
    'root same-site: ' . adm('PATCH', 'users/alice', '{"source":"admin"}', Authorization => "Bearer $root", 'Sec-Fetch-Site' => 'same-site'),
);
push @out, 'users ' . (users_dump() eq $before ? 'unchanged' : 'changed');
push @out, 'root same-origin: ' . adm('PATCH', 'users/carol', '{"active":false}', Authorization => "Bearer $root", 'Sec-Fetch-Site' => 'same-origin');
push @out, 'carol then: ' . said_login(login('carol', 'carol pass'));
push @out, 'root enables carol: ' . adm('PATCH', 'users/carol', '{"active":true}', Authorization => "Bearer $root");
join "\n", @out
--- client_output
alice lists: 403 not an admin user
alice adds: 403 not an admin user
alice makes herself admin: 403 not an admin user
alice as X-API-Key: 403 not an admin user
a chat key: 403 not an admin key
root cross-site: 403 cross-site admin requests are refused: use the admin page of this origin, or a client that is not a browser
root from another origin: 403 cross-site admin requests are refused: use the admin page of this origin, or a client that is not a browser
root same-site: 403 cross-site admin requests are refused: use the admin page of this origin, or a client that is not a browser
users unchanged
root same-origin: 200
carol then: 403 Inactive user
root enables carol: 200
--- no_error_log
[alert]
[crit]



=== TEST 11: the store truncated while logins and an admin's new user hash: 503 JSON, the workers live on, nothing is lost once the store is back
--- workers: 2
--- master_on
--- client
my $s = $ENV{TEST_NGINX_STORE};
File::Copy::copy("$s/data.mdb", "$StoreDir/good/data.mdb") or die $!;
my $before = users_dump();
my $old = pids();
my @h = map { start_login('bob', 'bob pass') } 1 .. 2;
wait_until(sub { error_log_text() =~ /(added to thread pool "logins".*){2}/s }, 'two hashes posted');
my $add = start_request('POST /admin/users', body => '{"name":"dave","source":"chat","password":"dave pass"}',
    headers => ['Content-Type' => 'application/json', Authorization => "Bearer $Key{admin}"]);
wait_until(sub { error_log_text() =~ /(added to thread pool "logins".*){3}/s }, 'the admin hash posted');
truncate "$s/data.mdb", 0 or die $!;
my @r = wait_all(@h);
my $added = said_login(wait_request($add));
my $last = said_login($r[1]) =~ /^503 the store cannot be read/ || said_login($r[0]) =~ /^503 the store cannot be read/
    ? 'a 503' : 'no 503: ' . join(' / ', map { said_login($_) } @r);
my $during = said_login(login('bob', 'bob pass'));
File::Copy::copy("$StoreDir/good/data.mdb", "$s/data.mdb") or die $!;
my $after;
wait_until(sub { $after = login('bob', 'bob pass'); $after->{status} == 200 }, 'a login again');
my $t = json_decode($after->{body})->{access_token};
my $dave = said_login(login('dave', 'dave pass'));
join "\n", "while it hashed: $last", "an admin's new user meanwhile: $added", "dave: $dave", "truncated: $during",
    'back: ' . said_login($after), 'me: ' . said_login(request('GET /auth/me', headers => [Authorization => "Bearer $t"])),
    'workers ' . (pids() eq $old ? 'the same' : 'changed')
--- client_output
while it hashed: a 503
an admin's new user meanwhile: 503 the store cannot be written
dave: 401 Incorrect username or password
truncated: 503 the store cannot be read
back: 200 -
me: 200 -
workers the same
--- no_error_log eval
[qr/\[crit\]/, qr/exited on signal/]



=== TEST 12: over HTTP/2, a stream reset while its hash runs gets nothing and its neighbour its token; a connection dropped with two hashing leaves the worker serving
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- http_config eval
$::http_config . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_H2_PORT http2;
        server_name localhost;
        access_log logs/h2.log creds;
        location /h2/ {
            seadragon_auth ollama thread_pool=logins attempts=off;
        }
    }
_EOC_
--- client
my $before = users_dump();
my $pids = pids();
my $done = tasks_done();
my $r = h2_logins(2, 'reset', sub {
    wait_until(sub { error_log_text() =~ /run task #\d+ in thread pool "logins"/ }, 'the hash runs') });
my @out = ('reset: ' . ($r->[0]{status} ? "answered $r->[0]{status}" : 'no answer'),
           'its neighbour: ' . $r->[1]{status} . ' ' . ($r->[1]{body} =~ /access_token/ ? 'token' : 'no token'));
wait_until(sub { tasks_done() - $done == 2 }, 'both hashes done');
my $mid = users_dump();
$done = tasks_done();
$r = h2_logins(2, 'drop', sub {
    wait_until(sub { (() = error_log_text() =~ /run task #\d+ in thread pool "logins"/g) >= 3 }, 'a hash runs') });
push @out, 'dropped: ' . join(',', map { $_->{status} ? "answered $_->{status}" : 'no answer' } @$r);
wait_until(sub { tasks_done() - $done == 2 }, 'both hashes done');
push @out, 'users after the drop ' . (users_dump() eq $mid ? 'unchanged' : 'changed');
my $next = login('alice', 'alice pass');
push @out, 'next: ' . said_login($next), 'worker ' . ($pids eq pids() ? 'the same' : 'changed'), queue_of();
join "\n", @out
--- workers: 1
--- master_on
--- client_output
reset: no answer
its neighbour: 200 token
dropped: no answer,no answer
users after the drop unchanged
next: 200 -
worker the same
processing=0 queue_length=0
--- no_error_log
[alert]
[crit]
exited on signal



=== TEST 13: "." and ".." are no names (a URL's dot segments would take them away from the admin API): refused by the API, the tool and in a token; "..." is one
--- client
my $before = users_dump();
my @out;
for my $name ('.', '..') {
    my $add = request('POST /admin/users', body => json_encode({ name => $name, source => 'chat', password => 'dots pass' }),
        headers => ['Content-Type' => 'application/json', Authorization => "Bearer $Key{admin}"]);
    my $key = request('POST /admin/keys', body => json_encode({ name => $name, source => 'chat' }),
        headers => ['Content-Type' => 'application/json', Authorization => "Bearer $Key{admin}"]);
    my $tool = eval { tool("user add '$name' --source chat < /dev/null"); 'added' } // 'refused';
    my $tkey = eval { tool("key create '$name' --source chat"); 'created' } // 'refused';
    my $t = jwt(jwt_secret(), $HS256, claims_text(sub => "\"$name\""));
    push @out, "'$name': add " . said_login($add) . "; key " . said_login($key)
        . "; tool: user $tool, key $tkey; its token: " . said_login(me_with(Authorization => "Bearer $t"))
        . '; login: ' . said_login(login($name, 'dots pass'));
}
push @out, 'users ' . (users_dump() eq $before ? 'unchanged' : 'changed');
my $add = request('POST /admin/users', body => json_encode({ name => '...', source => 'chat', password => 'dots pass' }),
    headers => ['Content-Type' => 'application/json', Authorization => "Bearer $Key{admin}"]);
my $get = request("GET /admin/users/...", headers => [Authorization => "Bearer $Key{admin}"]);
my $del = request("DELETE /admin/users/...", headers => [Authorization => "Bearer $Key{admin}"]);
push @out, "'...': add " . said_login($add) . ', get ' . json_decode($get->{body})->{name} . ', delete ' . said_login($del),
    'users ' . (users_dump() eq $before ? 'as before' : 'changed');
join "\n", @out
--- client_output
'.': add 400 "name" must have 1 to 63 letters, digits, "_", "-", "." and "@"; key 400 "name" must have 1 to 63 letters, digits, "_", "-", "." and "@"; tool: user refused, key refused; its token: 401 Could not validate credentials; login: 401 Incorrect username or password
'..': add 400 "name" must have 1 to 63 letters, digits, "_", "-", "." and "@"; key 400 "name" must have 1 to 63 letters, digits, "_", "-", "." and "@"; tool: user refused, key refused; its token: 401 Could not validate credentials; login: 401 Incorrect username or password
users unchanged
'...': add 201 -, get ..., delete 200 -
users as before
--- error_log
a token refused: sub is not a user name
--- no_error_log
[alert]
[crit]



=== TEST 14: logins pipelined on one keep-alive connection are answered in order, each after its hash, and the connection serves the request after them
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- client
my $alice = token_of('alice');
my $done = tasks_done();
my $f1 = form('alice', 'alice pass');
my $f2 = form('bob', 'wrong');
my $f3 = form('nobody', 'x');
my $req = join '', map { "POST /auth/token HTTP/1.1\r\nHost: localhost\r\n"
    . "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
    . length($_) . "\r\n\r\n$_" } $f1, $f2, $f3;
$req .= "GET /auth/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer $alice\r\n\r\n";
$req .= "POST /auth/token HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
    . length($f1) . "\r\n\r\n$f1";
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => server_port(), Proto => 'tcp')
    or die "connect: $!";
print $s $req;
my $all = '';
my $sel = IO::Select->new($s);
my $until = time + 10;
while (time < $until && $sel->can_read(1)) {
    my $n = sysread $s, my $buf, 65536;
    last unless $n;
    $all .= $buf;
}
my @status = $all =~ m{HTTP/1\.1 (\d{3}) }g;
my @bodies = $all =~ m{\r\n\r\n(?:[0-9a-f]+\r\n)?(\{[^\r\n]*\})}g;
join "\n", "statuses: @status",
    'me: ' . (grep({ /"name":"alice"/ } @bodies) ? 'alice' : 'missing'),
    'hashes: ' . (tasks_done() - $done)
--- client_output
statuses: 200 401 401 200 200
me: alice
hashes: 4
--- no_error_log
[alert]
[crit]



=== TEST 15: an admin user disabled while its POST users waits for its hash: the request, let in when it came, adds the user; the admin's next request is refused
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- client
my $root = token_of('root');
my $busy = start_login('alice', 'alice pass');
wait_until(sub { error_log_text() =~ /run task #\d+ in thread pool "logins"/ }, 'the thread busy');
my $add = start_request('POST /admin/users', body => '{"name":"erin","source":"chat","password":"erin pass"}',
    headers => ['Content-Type' => 'application/json', Authorization => "Bearer $root"]);
wait_until(sub { error_log_text() =~ /(added to thread pool "logins".*){2}/s }, 'the admin hash posted');
tool('user disable root');
my $added = wait_request($add);
wait_request($busy);
my $next = request('GET /admin/users', headers => [Authorization => "Bearer $root"]);
tool('user enable root');
my $erin = said_login(login('erin', 'erin pass'));
tool('user remove erin');
join "\n", 'added: ' . said_login($added), 'erin: ' . $erin, 'next: ' . said_login($next)
--- client_output
added: 201 -
erin: 200 -
next: 401 user disabled
--- no_error_log
[alert]
[crit]



=== TEST 16: a reload with worker_shutdown_timeout shorter than the hashes: the old worker closes their connections, finishes the hashes, exits without a leaked socket; nothing is written; the new worker logs in
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- master_on
--- main_config
    thread_pool logins threads=1;
    worker_shutdown_timeout 10ms;
--- client
my $before = users_dump();
my $old = pids();
my @h = map { start_login('alice', 'alice pass') } 1 .. 3;
wait_until(sub { error_log_text() =~ /(added to thread pool "logins".*){3}/s },
           'three hashes posted');
nginx_reload();
my @r = wait_all(@h);
wait_until(sub { !kill 0, $old }, 'the old worker gone');
wait_until(sub { tasks_done() == 3 }, 'the three hashes done');
my $cut = grep { !defined $_->{status} } @r;
my $ok = grep { defined $_->{status} && $_->{status} == 200 } @r;
# a hash done before the timeout is answered, and writes its last_login
# (the same second's may be the same bytes): only none answered is checked
my $same = $ok > 0 || users_dump() eq $before ? 'as the answers say'
                                              : 'changed with none answered';
my $r = login('alice', 'alice pass');
join "\n", 'cut or answered: ' . ($cut + $ok == 3 ? 'each' : 'odd: ' . join(',', map { $_->{status} // '-' } @r)),
    "users $same", 'next: ' . said_login($r)
--- client_output
cut or answered: each
users as the answers say
next: 200 -
--- no_error_log
[alert]
[crit]
exited on signal
