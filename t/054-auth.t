# Logins (issue 16): seadragon_auth's POST /auth/token and GET /auth/me.
# A wrong name and a wrong password get one answer after the same work (a
# hash in the thread pool each); a token is refused when it expired, when
# its signature is not the store's, when its alg is not HS256, and when its
# user was disabled since.  The hashes run in nginx's thread pool: another
# client's request is answered while they run, and a client that leaves
# during its hash leaves the worker as it was.  After every refusal the
# store's users are byte for byte what they were.  TEST 7 and TEST 17 are
# skipped under valgrind: it runs one thread at a time, so a hash holds the
# worker's thread back and the order they show cannot happen there.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::Logins;
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

user_add('alice', 'chat', 'correct horse');
user_add('bob', 'coding', 'battery staple');
user_add('carol', 'chat', 'carol secret');

our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m;
    log_format auth '$request_uri $status';
    access_log logs/auth.log auth;
_EOC_

our $config = <<'_EOC_';
    location /auth/ {
        seadragon_auth ollama thread_pool=logins;
    }
    location = /static {
        return 200 "static\n";
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

sub login {
    my ($name, $password) = @_;
    return request('POST /auth/token',
        body => 'grant_type=password&username=' . form_escape($name)
                . '&password=' . form_escape($password),
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
}

sub start_login {
    my ($name, $password) = @_;
    return start_request('POST /auth/token',
        body => 'username=' . form_escape($name)
                . '&password=' . form_escape($password),
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
}

sub me {
    my ($token) = @_;
    return request('GET /auth/me',
                   headers => { Authorization => "Bearer $token" });
}

sub claims {
    my (%c) = @_;
    my $now = time;
    return sprintf('{"sub":"%s","src":"%s","iat":%d,"exp":%d}',
                   $c{sub} // 'alice', $c{src} // 'chat', $c{iat} // $now,
                   $c{exp} // $now + 600);
}

sub refused_alike {
    my ($r, $what) = @_;
    die "$what: $r->{status} $r->{body}\n" unless $r->{status} == 401;
    die "$what: no WWW-Authenticate: Bearer\n"
        unless ($r->{headers}{'www-authenticate'} // '') eq 'Bearer';
    return $r->{body};
}


run_tests();

__DATA__

=== TEST 1: a login answers an OAuth2 bearer token, and me the user with its last login
--- client
my $before = time;
my $r = login('alice', 'correct horse');
die "login: $r->{status} $r->{body}" unless $r->{status} == 200;
die "no-store" unless $r->{headers}{'cache-control'} eq 'no-store';
my $t = json_decode($r->{body});
die "token_type" unless $t->{token_type} eq 'bearer';
die "expires_in" unless $t->{expires_in} == 3600;
die "not a JWT" unless $t->{access_token} =~ /^[\w-]+\.[\w-]+\.[\w-]+$/;
my $m = me($t->{access_token});
die "me: $m->{status} $m->{body}" unless $m->{status} == 200;
my $u = json_decode($m->{body});
die "me: $m->{body}" unless $u->{name} eq 'alice' && $u->{source} eq 'chat'
    && $u->{active} && $u->{created} > 0 && $u->{created} <= $before
    && $u->{last_login} >= $before && $u->{last_login} <= time;
my ($row) = grep { /^alice\t/ } split /\n/, tool('user list');
my $last = (split /\t/, $row)[4];
die "user list: $row" unless $last =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
"$u->{name} $u->{source} " . tasks_done()
--- client_output
alice chat 1
--- no_error_log
[alert]
[crit]



=== TEST 2: a wrong password and an unknown user get the same 401 after one hash each, and change nothing
--- client
my $dump = users_dump();
my $wrong = refused_alike(login('alice', 'wrong horse'), 'wrong password');
my $unknown = refused_alike(login('mallory', 'correct horse'), 'unknown user');
die "different answers: $wrong / $unknown" unless $wrong eq $unknown;
my $bad = refused_alike(login('not a name!', 'x'), 'invalid name');
die "different answers: $wrong / $bad" unless $wrong eq $bad;
die "users changed" unless users_dump() eq $dump;
my $e = json_decode($wrong);
"$e->{detail} | $e->{error} | " . tasks_done()
--- client_output
Incorrect username or password | Incorrect username or password | 3
--- no_error_log
logged in
[alert]



=== TEST 3: a disabled user's token is refused at the next request, and its login too; enabled again, the old token stays refused, a new login is served
--- client
my $t = json_decode(login('carol', 'carol secret')->{body})->{access_token};
my $m = me($t);
die "me: $m->{status}" unless $m->{status} == 200;
# a token's iat and the disable's time are whole seconds
select(undef, undef, undef, 1.1);
tool('user disable carol');
my $dump = users_dump();
my $after = me($t);
my $again = login('carol', 'carol secret');
die "users changed" unless users_dump() eq $dump;
tool('user enable carol');
my $back = me($t);
my $new = me(json_decode(login('carol', 'carol secret')->{body})->{access_token});
"$after->{status} " . json_decode($after->{body})->{detail}
    . " | $again->{status} " . json_decode($again->{body})->{detail}
    . " | $back->{status} " . json_decode($back->{body})->{detail}
    . " | $new->{status}"
--- client_output
403 Inactive user | 403 Inactive user | 401 Could not validate credentials | 200
--- error_log
a token of the disabled user "carol" refused



=== TEST 4: an expired token is refused, where the same token unexpired is accepted
--- client
my $key = jwt_secret();
my $head = '{"alg":"HS256","typ":"JWT"}';
my $good = me(jwt($key, $head, claims()));
die "the crafted token: $good->{status} $good->{body}" unless $good->{status} == 200;
my $dump = users_dump();
my $old = me(jwt($key, $head, claims(iat => time - 100, exp => time - 10)));
die "users changed" unless users_dump() eq $dump;
"$old->{status} " . json_decode($old->{body})->{detail}
    . " $old->{headers}{'www-authenticate'}"
--- client_output
401 Could not validate credentials Bearer
--- error_log
a token refused: token expired



=== TEST 5: a token signed with another key is refused
--- client
my $t = json_decode(login('alice', 'correct horse')->{body})->{access_token};
my $dump = users_dump();
my $r = me(jwt('k' x 32, '{"alg":"HS256","typ":"JWT"}', claims()));
my ($h, $c, $s) = split /\./, $t;
my $c2 = encode_base64url(claims(sub => 'bob', src => 'coding'));
my $swapped = me("$h.$c2.$s");
die "users changed" unless users_dump() eq $dump;
"$r->{status} $swapped->{status}"
--- client_output
401 401
--- error_log
a token refused: bad signature
--- no_error_log
[alert]



=== TEST 6: a token of alg none is refused, also with the store's signature
--- client
my $key = jwt_secret();
my $claims = claims();
my $none = encode_base64url('{"alg":"none","typ":"JWT"}') . '.'
           . encode_base64url($claims) . '.';
my $dump = users_dump();
my $r1 = me($none);
my $r2 = me(jwt($key, '{"alg":"none","typ":"JWT"}', $claims));
my $r3 = me(jwt($key, '{"alg":"HS512","typ":"JWT"}', $claims));
die "users changed" unless users_dump() eq $dump;
"$r1->{status} $r2->{status} $r3->{status}"
--- client_output
401 401 401
--- error_log
a token refused: alg is not HS256



=== TEST 7: another client's request is answered while logins wait for the one hashing thread
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- client
my @h = map { start_login('alice', 'correct horse') } 1 .. 3;
wait_until(sub { error_log_text() =~ /(added to thread pool "logins".*){3}/s },
           'three hashes posted');
my $s = request('GET /static');
die "static: $s->{status}" unless $s->{status} == 200;
my $done = tasks_done();
my @r = wait_all(@h);
die "login: $_->{status}" for grep { $_->{status} != 200 } @r;
my @order = map { /^(\S+) / } split /\n/, access_log_text('auth.log');
# the static request is answered before the last hash is done
my ($at) = grep { $order[$_] eq '/static' } 0 .. $#order;
($done < 3 ? 'before the hashes' : "after $done hashes") . " | static is "
    . ($at < 3 ? 'not last' : 'last')
--- client_output
before the hashes | static is not last
--- no_error_log
[alert]



=== TEST 8: a client that leaves during its hash leaves the worker serving and the store as it was
--- client
my $dump = users_dump();
my $h = start_login('alice', 'correct horse');
wait_until(sub { error_log_text() =~ /run task #\d+ in thread pool "logins"/ },
           'the hash runs');
abort_request($h);
wait_until(sub { tasks_done() == 1 }, 'the hash done');
wait_until(sub { access_log_text('auth.log') =~ m{^/auth/token 499$}m },
           'the request ended as the client left');
my $same = users_dump() eq $dump ? 'unchanged' : 'changed';
my $r = login('bob', 'battery staple');
"$same $r->{status}"
--- client_output
unchanged 200
--- no_error_log
the user "alice" logged in
[alert]
[crit]



=== TEST 9: the login form is checked: a form, both fields, grant_type password
--- client
my $dump = users_dump();
my @r = (
    request('POST /auth/token', body => 'username=alice',
            headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }),
    request('POST /auth/token', body => '{"username":"alice"}',
            headers => { 'Content-Type' => 'application/json' }),
    request('POST /auth/token',
            body => 'grant_type=client_credentials&username=alice&password=x',
            headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }),
    request('POST /auth/token', body => 'username=alice&password=%zz',
            headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }),
    request('POST /auth/token', body => 'username=a&username=b&password=x',
            headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }),
    request('POST /auth/token', body => 'username=alice&password=' . ('x' x 5000),
            headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }),
    request('GET /auth/token'),
    request('POST /auth/other'),
    request('GET /auth/me'),
);
die "users changed" unless users_dump() eq $dump;
die "a hash ran" if tasks_done();
join ' ', map { $_->{status} . ':' . (json_decode($_->{body})->{error} =~ /^(\w+)/)[0] } @r
--- client_output
422:username 415:a 400:unsupported 400:the 400:a 413:the 405:a 404:no 401:Not
--- no_error_log
[alert]



=== TEST 10: seadragon_auth needs a store
--- http_config
    seadragon_zone ollama:1m;
--- must_die
--- error_log
"seadragon_auth" in



=== TEST 11: seadragon_auth names its parameters and checks expires=
--- config
    location /auth/ { seadragon_auth ollama expires=10s; }
--- must_die
--- error_log
invalid value "expires=10s": expires= is how long a login token lasts



=== TEST 12: seadragon_auth refuses an unknown parameter
--- config
    location /auth/ { seadragon_auth ollama lifetime=1h; }
--- must_die
--- error_log
invalid parameter "lifetime=1h": expected expires=TIME



=== TEST 13: a thread pool that is not declared is nginx's own error
--- config
    location /auth/ { seadragon_auth ollama thread_pool=nowhere; }
--- must_die
--- error_log
unknown thread pool "nowhere"



=== TEST 14: expires= sets the token's life and its claim
--- config
    location /auth/ { seadragon_auth ollama expires=5m thread_pool=logins; }
--- client
my $before = time;
my $t = json_decode(login('bob', 'battery staple')->{body});
my ($c) = (split /\./, $t->{access_token})[1];
$c =~ tr/-_/+\//;
require MIME::Base64;
my $claims = json_decode(MIME::Base64::decode_base64($c . '=' x (-length($c) % 4)));
"$t->{expires_in} " . ($claims->{exp} - $claims->{iat}) . " $claims->{sub} $claims->{src}"
--- client_output
300 300 bob coding



=== TEST 15: seadragon_auth answers its location itself: no queue in it
--- config
    location /auth/ {
        seadragon_queue ollama;
        seadragon_auth ollama thread_pool=logins;
    }
--- must_die
--- error_log
answers the location's requests itself



=== TEST 16: a token signed with the secret before the last rotation is accepted, two rotations old refused
--- client
my $t = json_decode(login('bob', 'battery staple')->{body})->{access_token};
tool('secret rotate');
my $one = me($t);
my $fresh = json_decode(login('bob', 'battery staple')->{body})->{access_token};
tool('secret rotate');
my $two = me($t);
my $newer = me($fresh);
"$one->{status} $two->{status} $newer->{status}"
--- client_output
200 401 200
--- error_log
a token refused: bad signature



=== TEST 17: a reload while hashes wait: the old worker answers its logins before it exits
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- master_on
--- client
my @h = map { start_login('bob', 'battery staple') } 1 .. 3;
wait_until(sub { error_log_text() =~ /(added to thread pool "logins".*){3}/s },
           'three hashes posted');
nginx_reload();
my @r = wait_all(@h);
my $log = error_log_text();
my $quit = index($log, 'gracefully shutting down');
my $last = rindex($log, 'complete task #');
join(' ', map { $_->{status} } @r)
    . ($quit >= 0 && $quit < $last ? ' | a hash ended after the old worker was told to quit' : ' | all hashed before the reload')
--- client_output
200 200 200 | a hash ended after the old worker was told to quit
--- no_error_log
[alert]



=== TEST 18: a token of a user removed, or whose password changed since, is refused; the new password logs in
--- client
user_add('dave', 'chat', 'old pass');
user_add('erin', 'chat', 'erin pass');
my $d = json_decode(login('dave', 'old pass')->{body})->{access_token};
my $e = json_decode(login('erin', 'erin pass')->{body})->{access_token};
tool('user remove erin');
select undef, undef, undef, 1.1;    # the password's change is to the second
my $file = "$StoreDir/password";
open my $fh, '>', $file or die "$file: $!";
print $fh "new pass\n";
close $fh;
tool("user passwd dave < '$file'");
unlink $file;
my @r = (me($e), me($d), login('dave', 'old pass'), login('dave', 'new pass'));
tool('user remove dave');
join ' ', map { $_->{status} } @r
--- client_output
401 401 401 200
--- error_log
the user is gone or has changed



=== TEST 19: without thread_pool= the hashes run in nginx's default pool
--- main_config
--- config
    location /auth/ { seadragon_auth ollama; }
--- client
my $r = login('bob', 'battery staple');
"$r->{status} " . (error_log_text() =~ /complete task #\d+ in thread pool "default"/ ? 'default' : 'elsewhere')
--- client_output
200 default



=== TEST 20: what only a key's holder could write is bounded: a life over 30 days, a token made in the future, the retired key signing after its retirement
--- client
my $head = '{"alg":"HS256","typ":"JWT"}';
my $now = time;
my $key = jwt_secret();
my $long = me(jwt($key, $head, claims(exp => $now + 31 * 86400)));
my $month = me(jwt($key, $head, claims(exp => $now + 30 * 86400 - 5)));
my $future = me(jwt($key, $head, claims(iat => $now + 3600, exp => $now + 7200)));
tool('secret rotate');
my ($old, $retired) = (jwt_secret('jwt_previous'), jwt_secret_created('jwt_previous'));
die "retired at $retired, now $now" unless $retired >= $now && $retired <= time;
my $before = me(jwt($old, $head, claims(iat => $retired, exp => $retired + 600)));
my $after = me(jwt($old, $head, claims(iat => $retired + 1, exp => $retired + 600)));
join ' ', map { $_->{status} } $long, $month, $future, $before, $after
--- client_output
401 200 401 200 401
--- error_log
the token's life is longer than any seadragon_auth gives
the token was made in the future
the token was signed by the previous key after it was retired



=== TEST 21: nginx's own refusal of a login's body is JSON too (over client_max_body_size: 413), and no hash runs
--- config
    location /auth/ {
        seadragon_auth ollama thread_pool=logins;
        client_max_body_size 100;
    }
--- client
my $dump = users_dump();
my $r = request('POST /auth/token',
    body => 'username=alice&password=' . ('x' x 200),
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
die "users changed" unless users_dump() eq $dump;
die "a hash ran" if tasks_done();
"$r->{status} $r->{headers}{'content-type'} "
    . (eval { json_decode($r->{body})->{error} } // "not JSON: $r->{body}")
--- client_output_like
^413 application/json request body too large
