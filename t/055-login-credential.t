# Logins' tokens as credentials on the queue locations (issue 16): a valid
# token of an active user gives the user's source whatever the conditions
# say, as a Seadragon key does, and never reaches Ollama or a log; a
# token that is expired, forged, of alg none, two rotations old or of a
# user disabled since is refused with 401 at the next request.  A source
# with "login" takes only its users' tokens (an API key made for it is
# refused); one with "key" takes its keys and its users' tokens.  The
# whitelist still applies to a token's source.  After every refusal:
# nothing reached Ollama, nothing queued, the counters moved only by the
# refusal, and the store's users are byte for byte what they were.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::Logins qw(user_add form_escape users_dump jwt_secret jwt);
use Digest::SHA qw(hmac_sha256);
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

our $StoreDir = store_init();
sub tool { store_tool(@_) }

user_add('alice', 'chat', 'alice pass');     # a chat user
user_add('bob', 'coding', 'bob pass');       # a coding user
user_add('carol', 'chat', 'carol pass');     # disabled and enabled again
user_add('dave', 'web', 'dave pass');        # of the source with "login"
user_add('erin', 'office', 'erin pass');     # of the whitelisted source
user_add('frank', 'ghost', 'frank pass');    # of a source not configured

our %Key = (
    web  => tool('key create webkey --source web'),
    chat => tool('key create chatkey --source chat'),
);

# coding by User-Agent with a credential; chat by Origin-like header with
# one; web for logins only; office for a credential from the whitelist
our $http_config = <<'_EOC_';
    seadragon_store  $TEST_NGINX_STORE;
    seadragon_zone   ollama:1m capacity=1 fair=tokens;

    map $http_user_agent $is_coding {
        default         0;
        "~*continue"    1;
    }

    seadragon_source coding priority=1 if=$is_coding key
                     endpoints=generate,info,manage;
    seadragon_source chat   priority=2 if=$http_x_chat key;
    seadragon_source web    priority=2 if=$http_x_web login;
    seadragon_source office priority=2 key whitelist;
    seadragon_source api    priority=3;

    log_format creds '$http_x_standin_tag source=$seadragon_source '
                     'user=$seadragon_user key=$seadragon_key_name '
                     'status=$status auth="$http_authorization" '
                     'x_api_key="$http_x_api_key"';
_EOC_

our $config = <<'_EOC_';
    seadragon_json_errors on;
    access_log logs/creds.log creds;
    location /auth/ {
        seadragon_auth ollama thread_pool=logins;
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

chat_defaults(body => '{"model":"llama3:70b","messages":'
                      . '[{"role":"user","content":"hi"}],"stream":false}',
              'X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0);

# a user's token from POST /auth/token
sub token_of {
    my ($name) = @_;
    my $r = request('POST /auth/token',
        body => 'username=' . form_escape($name) . '&password='
                . form_escape("$name pass"),
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    die "login of $name: " . said($r) unless $r->{status} == 200;
    return json_decode($r->{body})->{access_token};
}

# a chat request tagged TAG, at once, with the headers given
sub ask {
    my ($tag, %headers) = @_;
    return request('POST /api/chat', body => $::chat_body,
                   headers => { 'X-Standin-Tag' => $tag,
                                'X-Standin-Tokens' => 1, %headers });
}
our $chat_body = '{"model":"llama3:70b","messages":'
                 . '[{"role":"user","content":"hi"}],"stream":false}';

sub bearer { (Authorization => "Bearer $_[0]") }

sub claims {
    my (%c) = @_;
    my $now = time;
    return sprintf('{"sub":"%s","src":"%s","iat":%d,"exp":%d}',
                   $c{sub} // 'alice', $c{src} // 'chat', $c{iat} // $now,
                   $c{exp} // $now + 600);
}

our $HS256 = '{"alg":"HS256","typ":"JWT"}';

# every counter of every source, flat: "api.received", "api.rejected.key"
sub counters {
    my $s = admin_stats();
    my %f;
    for my $src (keys %$s) {
        for my $k (keys %{ $s->{$src} }) {
            my $v = $s->{$src}{$k};
            if (ref $v eq 'HASH') {
                $f{"$src.$k.$_"} = $v->{$_} for keys %$v;
            } elsif (!ref $v) {
                $f{"$src.$k"} = $v;
            }
        }
    }
    return \%f;
}

sub queue_of {
    my $q = admin_queue();
    return "gate=$q->{gate} processing=$q->{processing} "
           . "queue_length=$q->{queue_length}";
}

# what a refusal must leave as it was
sub snapshot {
    return { counters => counters(), queue => queue_of(),
             ollama => scalar @{ standin_requests() }, users => users_dump() };
}

# the answer is the refusal STATUS ERROR, and nothing changed but the
# counters named in @moved (each by one)
sub refused {
    my ($before, $r, $status, $error, @moved) = @_;
    my $what = "$status $error";
    die "$what: got " . said($r) . "\n" unless $r->{status} == $status
        && json_decode($r->{body})->{error} eq $error;
    die "$what: no WWW-Authenticate: Bearer\n" if $status == 401
        && ($r->{headers}{'www-authenticate'} // '') ne 'Bearer';
    my $after = snapshot();
    die "$what: the queue changed\n" unless $after->{queue} eq $before->{queue};
    die "$what: Ollama got a request\n"
        unless $after->{ollama} == $before->{ollama};
    die "$what: the users changed\n" unless $after->{users} eq $before->{users};
    my %want = %{ $before->{counters} };
    $want{$_}++ for @moved;
    my %all = (%want, %{ $after->{counters} });
    for my $k (sort keys %all) {
        next if $k =~ /wait_(total|max)$/;
        die "$what: $k is " . ($after->{counters}{$k} // 'missing') . ", not "
            . ($want{$k} // 0) . "\n"
            unless ($after->{counters}{$k} // -1) == ($want{$k} // 0);
    }
    return "$r->{status} $error";
}

# the lines of logs/creds.log with tag TAG, once there is one
sub logged {
    my ($tag) = @_;
    my @lines;
    wait_until(sub {
        @lines = grep { /^\Q$tag\E / } split /\n/, access_log_text('creds.log');
        @lines > 0 }, "$tag in the log");
    return join "\n", map { s/^\S+ //r } @lines;
}

# no header of a key reached Ollama, and no token is in a log (but nginx's
# own debug lines of the request's headers)
sub nothing_leaked {
    my (@tokens) = @_;
    my @seen = grep { exists $_->{headers}{authorization}
                      || exists $_->{headers}{'x-api-key'} }
               @{ standin_requests() };
    die "Ollama got a credential" if @seen;
    my $access = access_log_text('creds.log');
    my @errors = grep { !/\[debug\]/ } split /\n/, error_log_text();
    for my $t (@tokens) {
        die "a token in the access log" if index($access, $t) >= 0;
        die "a token in the error log" if grep { index($_, $t) >= 0 } @errors;
    }
    return 'nothing leaked';
}

# nginx -t on the block's configuration
sub nginx_t {
    my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $out = `'$nginx' -p '@{[servroot()]}/' -c conf/nginx.conf -e logs/error.log -t 2>&1`;
    return ($? >> 8, $out);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a token gives its user's source, whatever the headers say: the order with the gate held, the tenants, the log; the token never reaches Ollama
--- client
my ($a, $b) = (token_of('alice'), token_of('bob'));
my $base = queued_count();
my $hold = hold_gate('hold', 'X-Standin-Tokens' => 1);
my @h;
# arrival: api, chat's user by Bearer, chat's user by X-API-Key, coding's
# user claiming chat by header: served coding, chat, chat, api
for my $req (['api1'], ['a1', bearer($a)], ['a2', 'X-API-Key' => $a],
             ['b1', bearer($b), 'X-Chat' => 1]) {
    my ($tag, @headers) = @$req;
    push @h, chat($tag, @headers);
    my $n = @h;
    wait_until(sub { queued_count() == $base + 1 + $n }, "$tag to queue");
}
my $q = admin_queue();
my $tenants = join ' ', map { "$_->{source}:$_->{tenant}" } @{ $q->{entries} };
release_gate($hold);
my @r = wait_all(@h);
die "not served: " . join(' ', map { $_->{status} } @r)
    if grep { $_->{status} != 200 } @r;
join "\n", served_tags(), $tenants,
    map({ "$_ " . logged($_) } qw(a1 a2 b1 api1)), nothing_leaked($a, $b)
--- client_output
hold,b1,a1,a2,api1
coding:user:bob chat:user:alice chat:user:alice api:addr:127.0.0.1
a1 source=chat user=alice key=- status=200 auth="-" x_api_key="-"
a2 source=chat user=alice key=- status=200 auth="-" x_api_key="-"
b1 source=coding user=bob key=- status=200 auth="-" x_api_key="-"
api1 source=api user=- key=- status=200 auth="-" x_api_key="-"
nothing leaked
--- no_error_log
[alert]
[crit]



=== TEST 2: a chat user's token is refused where coding is required: chosen by User-Agent it is chat, coding's endpoints are refused, a token forged to claim coding is refused
--- client
my ($a, $b) = (token_of('alice'), token_of('bob'));
my @out;
my $r = ask('ua-alice', 'User-Agent' => 'continue/1.0', bearer($a));
push @out, "$r->{status} " . logged('ua-alice');
$r = ask('ua-bob', 'User-Agent' => 'continue/1.0', bearer($b));
push @out, "$r->{status} " . logged('ua-bob');
my $pull = '{"model":"llama3:70b","stream":false}';
my $s = snapshot();
$r = request('POST /api/pull', body => $pull,
             headers => { 'X-Standin-Tag' => 'pull-alice',
                          'User-Agent' => 'continue/1.0', bearer($a) });
push @out, refused($s, $r, 403, 'model management needs an admin key',
                   'chat.received', 'chat.rejected.endpoint');
$r = request('POST /api/pull', body => $pull,
             headers => { 'X-Standin-Tag' => 'pull-bob',
                          'User-Agent' => 'continue/1.0', bearer($b) });
push @out, "$r->{status} " . logged('pull-bob');
# the claims say coding, signed with the store's key: alice is not coding's
my $forged = jwt(jwt_secret(), $HS256, claims(sub => 'alice', src => 'coding'));
$s = snapshot();
$r = ask('forged', 'User-Agent' => 'continue/1.0', bearer($forged));
push @out, refused($s, $r, 401, 'invalid login token',
                   'api.received', 'api.rejected.key');
join "\n", @out, nothing_leaked($a, $b, $forged)
--- client_output
200 source=chat user=alice key=- status=200 auth="-" x_api_key="-"
200 source=coding user=bob key=- status=200 auth="-" x_api_key="-"
403 model management needs an admin key
200 source=coding user=bob key=- status=200 auth="-" x_api_key="-"
401 invalid login token
nothing leaked
--- error_log
the user is gone or has changed



=== TEST 3: a disabled user is refused at its next request; enabled again, its old tokens stay refused and a new login is served
--- client
my $t = token_of('carol');
my @out;
my $r = ask('before', 'X-Chat' => 1, bearer($t));
push @out, "$r->{status} " . logged('before');
# a token's iat and the disable's time are whole seconds
select(undef, undef, undef, 1.1);
tool('user disable carol');
my $s = snapshot();
$r = ask('disabled', bearer($t));
push @out, refused($s, $r, 401, 'user disabled',
                   'api.received', 'api.rejected.key');
$s = snapshot();
$r = ask('disabled-chat', 'X-Chat' => 1, bearer($t));
push @out, refused($s, $r, 401, 'user disabled',
                   'api.received', 'api.rejected.key');
push @out, logged('disabled');
tool('user enable carol');
$r = ask('after', bearer($t));
push @out, "$r->{status} " . json_decode($r->{body})->{error};
my $new = token_of('carol');
$r = ask('anew', bearer($new));
push @out, "$r->{status} " . logged('anew');
join "\n", @out, nothing_leaked($t, $new)
--- client_output
200 source=chat user=carol key=- status=200 auth="-" x_api_key="-"
401 user disabled
401 user disabled
source=api user=- key=- status=401 auth="-" x_api_key="-"
401 invalid login token
200 source=chat user=carol key=- status=200 auth="-" x_api_key="-"
nothing leaked
--- error_log
a token of the disabled user "carol" refused
seadragon: user disabled



=== TEST 4: an expired token is refused, where the same claims unexpired are served
--- client
my $key = jwt_secret();
my $good = jwt($key, $HS256, claims(sub => 'bob', src => 'coding'));
my $old = jwt($key, $HS256, claims(sub => 'bob', src => 'coding',
                                   iat => time - 100, exp => time - 10));
my $r = ask('fresh', bearer($good));
my @out = ("$r->{status} " . logged('fresh'));
my $s = snapshot();
$r = ask('expired', bearer($old));
push @out, refused($s, $r, 401, 'invalid login token',
                   'api.received', 'api.rejected.key');
join "\n", @out, nothing_leaked($good, $old)
--- client_output
200 source=coding user=bob key=- status=200 auth="-" x_api_key="-"
401 invalid login token
nothing leaked
--- error_log
a token refused: token expired
seadragon: invalid login token



=== TEST 5: a forged signature, alg none (unsigned and signed) and HS512 are refused, each changing nothing
--- client
my $key = jwt_secret();
my $claims = claims(sub => 'bob', src => 'coding');
my @tokens = (
    jwt('k' x 32, $HS256, $claims),
    encode_base64url('{"alg":"none","typ":"JWT"}') . '.'
        . encode_base64url($claims) . '.',
    jwt($key, '{"alg":"none","typ":"JWT"}', $claims),
    jwt($key, '{"alg":"HS512","typ":"JWT"}', $claims),
);
my @out;
for my $t (@tokens) {
    my $s = snapshot();
    my $r = ask('forged', 'X-API-Key' => $t);
    push @out, refused($s, $r, 401, 'invalid login token',
                       'api.received', 'api.rejected.key');
}
join "\n", @out, nothing_leaked(@tokens)
--- client_output
401 invalid login token
401 invalid login token
401 invalid login token
401 invalid login token
nothing leaked
--- error_log
a token refused: bad signature
a token refused: alg is not HS256



=== TEST 6: rotation: a token of the previous secret is served, two rotations old refused
--- client
my $t = token_of('bob');
tool('secret rotate');
my $r = ask('one', bearer($t));
my @out = ("$r->{status} " . logged('one'));
tool('secret rotate');
my $s = snapshot();
$r = ask('two', bearer($t));
push @out, refused($s, $r, 401, 'invalid login token',
                   'api.received', 'api.rejected.key');
$r = ask('fresh', bearer(token_of('bob')));
push @out, "$r->{status} " . logged('fresh');
join "\n", @out
--- client_output
200 source=coding user=bob key=- status=200 auth="-" x_api_key="-"
401 invalid login token
200 source=coding user=bob key=- status=200 auth="-" x_api_key="-"
--- error_log
a token refused: bad signature



=== TEST 7: a source with "login" takes its users' tokens only: its own API key, no credential and another bearer word get 401 login required
--- client
my $d = token_of('dave');
my @out;
my $r = ask('dave', bearer($d));
push @out, "$r->{status} " . logged('dave');
for my $case (['key', bearer($Key{web})], ['key-x', 'X-API-Key' => $Key{web}],
              ['none', 'X-Web' => 1], ['ollama', 'X-Web' => 1, bearer('ollama')],
              ['key-header', 'X-Web' => 1, bearer($Key{web})]) {
    my ($tag, @headers) = @$case;
    my $s = snapshot();
    $r = ask($tag, @headers);
    # web's key, or web's condition: counted as web's
    push @out, "$tag " . refused($s, $r, 401, 'login required',
                                 'web.received', 'web.rejected.key');
}
# a chat key claiming web by header: the key decides, chat
$r = ask('chatkey', 'X-Web' => 1, bearer($Key{chat}));
push @out, "$r->{status} " . logged('chatkey');
join "\n", @out, logged('key'), nothing_leaked($d, $Key{web}, $Key{chat})
--- client_output
200 source=web user=dave key=- status=200 auth="-" x_api_key="-"
key 401 login required
key-x 401 login required
none 401 login required
ollama 401 login required
key-header 401 login required
200 source=chat user=- key=chatkey status=200 auth="-" x_api_key="-"
source=web user=- key=webkey status=401 auth="-" x_api_key="-"
nothing leaked
--- error_log
seadragon: login required (key "webkey")



=== TEST 8: a source with "key" takes a user's token as it takes its keys; without a credential, API key required
--- client
my $a = token_of('alice');
my @out;
my $s = snapshot();
my $r = ask('nokey', 'X-Chat' => 1);
push @out, refused($s, $r, 401, 'API key required',
                   'chat.received', 'chat.rejected.key');
$s = snapshot();
$r = ask('ollama', 'X-Chat' => 1, bearer('ollama'));
push @out, refused($s, $r, 401, 'invalid API key',
                   'chat.received', 'chat.rejected.key');
for my $case (['token', bearer($a)], ['key', bearer($Key{chat})]) {
    my ($tag, @headers) = @$case;
    $r = ask($tag, 'X-Chat' => 1, @headers);
    push @out, "$r->{status} " . logged($tag);
}
join "\n", @out, nothing_leaked($a, $Key{chat})
--- client_output
401 API key required
401 invalid API key
200 source=chat user=alice key=- status=200 auth="-" x_api_key="-"
200 source=chat user=- key=chatkey status=200 auth="-" x_api_key="-"
nothing leaked



=== TEST 9: the whitelist still applies to a token's source
--- client
my $e = token_of('erin');
my @out;
my $s = snapshot();
my $r = ask('outside', bearer($e));
push @out, refused($s, $r, 403, 'IP not whitelisted',
                   'office.received', 'office.rejected.whitelist');
push @out, logged('outside');
tool('whitelist add 127.0.0.1');
$r = ask('inside', bearer($e));
tool('whitelist remove 127.0.0.1');
push @out, "$r->{status} " . logged('inside');
join "\n", @out, nothing_leaked($e)
--- client_output
403 IP not whitelisted
source=office user=erin key=- status=403 auth="-" x_api_key="-"
200 source=office user=erin key=- status=200 auth="-" x_api_key="-"
nothing leaked
--- error_log
seadragon: client 127.0.0.1 is not whitelisted



=== TEST 10: a user of a source the gateway does not serve is refused, as a key of one is
--- client
my $f = token_of('frank');
my $s = snapshot();
my $r = ask('ghost', bearer($f));
join "\n", refused($s, $r, 401, 'login grants a source this gateway does not serve',
                   'api.received', 'api.rejected.key'),
    logged('ghost'), nothing_leaked($f)
--- client_output
401 login grants a source this gateway does not serve
source=api user=frank key=- status=401 auth="-" x_api_key="-"
nothing leaked
--- error_log
seadragon user "frank" is of the source "ghost", which is not configured



=== TEST 11: a store that cannot be read: a token gets the 503 a key gets
--- client
my $t = token_of('bob');
my $data = "$ENV{TEST_NGINX_STORE}/data.mdb";
rename $data, "$data.away" or die "$data: $!";
my $k;
wait_until(sub { $k = ask('gone-key', bearer($Key{chat})); $k->{status} == 503 },
           'the store out of reach');
my $before = scalar @{ standin_requests() };
my $r = ask('gone', bearer($t));
my $after = scalar @{ standin_requests() };
rename "$data.away", $data or die "$data: $!";
my $back;
wait_until(sub { $back = ask('back', bearer($t)); $back->{status} == 200 },
           'the store read again');
join "\n", said($r), said($k), ($r->{headers}{'retry-after'} ? 'Retry-After' : 'none'),
    ($after == $before ? 'Ollama got nothing' : 'Ollama got it'),
    logged('gone'), nothing_leaked($t)
--- client_output
503 {"error":"the gateway cannot check access right now, please try again"}
503 {"error":"the gateway cannot check access right now, please try again"}
Retry-After
Ollama got nothing
source=api user=- key=- status=503 auth="-" x_api_key="-"
nothing leaked



=== TEST 12: nginx -t: a source with "login" needs no warning; without "if=" it is no default; its users' tokens need the store
--- http_config
    seadragon_store  $TEST_NGINX_STORE;
    seadragon_zone   ollama:1m;
    seadragon_source web priority=1 if=$http_x_web login;
    seadragon_source web2 priority=1 login;
    seadragon_source api priority=3;
--- config
    location /api/ { seadragon_queue ollama; return 200 "ok"; }
--- client
my ($rc, $out) = nginx_t();
"$rc " . ($out =~ /anyone can claim/ ? 'warned' : 'no warning')
--- client_output
0 no warning



=== TEST 13: a user is one client for max_queued_per_client, whatever its address shares: a second request of alice refused, bob's and a keyless one queued
--- http_config eval
$::http_config =~ s/fair=tokens;/fair=tokens max_queued_per_client=1;/r
--- client
my ($a, $b) = (token_of('alice'), token_of('bob'));
my $base = queued_count();
my $hold = hold_gate('hold', 'X-Standin-Tokens' => 1);
my @h = (chat('a1', bearer($a)));
wait_until(sub { queued_count() == $base + 2 }, 'a1 to queue');
my $s = snapshot();
my $r = ask('a2', bearer($a));
my $second = refused($s, $r, 429,
    'too many requests: this client already has 1 waiting in line, the most it may',
    'chat.received', 'chat.rejected.client_cap');
push @h, chat('b1', bearer($b));
wait_until(sub { queued_count() == $base + 3 }, 'b1 to queue');
push @h, chat('api1');
wait_until(sub { queued_count() == $base + 4 }, 'api1 to queue');
release_gate($hold);
my @r = wait_all(@h);
join "\n", $second, join(' ', map { $_->{status} } @r), served_tags()
--- client_output
429 too many requests: this client already has 1 waiting in line, the most it may
200 200 200
hold,b1,a1,api1



=== TEST 14: GET /auth/queue lists where the token's user's own requests wait, nobody else's; it changes nothing, and refuses what me refuses
--- client
my ($a, $b, $c) = (token_of('alice'), token_of('bob'), token_of('carol'));
my $base = queued_count();
my $hold = hold_gate('hold', 'X-Standin-Tokens' => 1);
my @h;
# in line, in dispatch order: b1 (coding), a1, c1, a2 (chat), api1
for my $req (['a1', bearer($a)], ['c1', bearer($c)], ['a2', bearer($a)],
             ['api1'], ['b1', bearer($b)]) {
    my ($tag, @headers) = @$req;
    push @h, chat($tag, @headers);
    my $n = @h;
    wait_until(sub { queued_count() == $base + 1 + $n }, "$tag to queue");
}
my $places = sub {
    my ($token) = @_;
    my $r = request('GET /auth/queue', headers => { bearer($token) });
    die "queue: " . said($r) unless $r->{status} == 200
        && ($r->{headers}{'cache-control'} // '') eq 'no-store';
    my $q = json_decode($r->{body});
    return join(' ', map { "$_->{source}:$_->{model}:$_->{position}"
                           . ($_->{waited_ms} >= 0 ? '' : ':bad-wait') }
                     @{ $q->{waiting} }) . " more=$q->{more} total=$q->{total}";
};
my $s = snapshot();
my @lists = map { $places->($_) } $a, $b, $c;
die "the queue changed" unless snapshot()->{queue} eq $s->{queue};
my $none = request('GET /auth/queue');
my $key = request('GET /auth/queue', headers => { bearer($::Key{chat}) });
my $post = request('POST /auth/queue', body => '{}');
tool('user disable carol');
my $off = request('GET /auth/queue', headers => { bearer($c) });
tool('user enable carol');
release_gate($hold);
my @r = wait_all(@h);
my $after = $places->($a);
join "\n", @lists, map({ "$_->{status} " . json_decode($_->{body})->{detail} }
                       $none, $key, $post, $off),
    "after: $after"
--- client_output
chat:llama3:70b:2 chat:llama3:70b:4 more=0 total=5
coding:llama3:70b:1 more=0 total=5
chat:llama3:70b:3 more=0 total=5
401 Not authenticated
401 Could not validate credentials
405 a user's place in line is GET .../queue
403 Inactive user
after:  more=0 total=0
--- no_error_log
[alert]
[crit]
