# The store's users through the admin API (issue 16): GET/POST users,
# GET/PATCH/DELETE users/NAME, with the tool's rules; a new password
# hashed in the admin location's thread pool, never in the worker; a
# login's token of an active user of the admin source counts as an admin
# key.  After every refusal the store's users are byte for byte what they
# were (mdb_dump), the counters the same, and no hash ran.  TEST 6 (an
# order of events around the hashing thread) is skipped under valgrind,
# which runs one thread at a time, as t/054's TEST 7 is.
use lib 't/lib';
use Test::Seadragon;
use Test::Seadragon::Logins qw(user_add form_escape);
use File::Temp ();

if (!-x store_tool_path()) {
    require Test::More;
    Test::More::plan(skip_all => "build/seadragon-store is not built: run make");
}

for my $util (qw(mdb_dump mdb_load)) {
    next if grep { -x "$_/$util" } split /:/, $ENV{PATH};
    require Test::More;
    Test::More::plan(skip_all => "$util is missing");
}

our $StoreDir = store_init();
sub tool { store_tool(@_) }

our $admin = tool('key create ops --source admin');
our $coder = tool('key create dev --source coding');

user_add('root', 'admin', 'root pass');
user_add('alice', 'chat', 'alice pass');

# a store as the tool made it before users: no "users", no jwt_secret
sub old_store {
    my $new = "$StoreDir/new";
    my $old = "$StoreDir/old";
    my $init = `'${\ store_tool_path()}' --store '$new' init 2>&1`;
    die "init: $init" if $?;
    mkdir $old or die $!;
    my $dump = `mdb_dump -a '$new'`;
    die 'mdb_dump' if $?;
    for my $section (split /(?=^VERSION=)/m, $dump) {
        next if $section =~ /^database=users$/m;
        if ($section =~ /^database=meta$/m) {
            my $hex = unpack 'H*', 'jwt_secret';
            $section =~ s/^ \Q$hex\E\n [0-9a-f]+\n//m or die 'no jwt_secret';
        }
        my $file = File::Temp->new();
        print $file $section;
        close $file;
        my $out = `mdb_load -f '$file' '$old' 2>&1`;
        die "mdb_load: $out" if $?;
    }
    return $old;
}

$ENV{TEST_NGINX_OLD_STORE} = old_store();

our $http_config = <<'_EOC_';
    seadragon_store $TEST_NGINX_STORE;
    seadragon_zone ollama:1m;
    seadragon_source coding priority=1 key;
    seadragon_source chat priority=2;
    log_format adm '$request_method $uri $status';
    access_log logs/adm.log adm;
    log_format who '$request_method $uri user=$seadragon_user key=$seadragon_key_name';
    access_log logs/who.log who;
_EOC_

our $config = <<'_EOC_';
    location /api/admin/ {
        seadragon_admin ollama thread_pool=hashes;
    }
    location /auth/ {
        seadragon_auth ollama thread_pool=hashes;
    }
    location = /static {
        return 200 "static\n";
    }
_EOC_

our $main_config = <<'_EOC_';
    thread_pool hashes threads=1;
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", $http_config)
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
    $block->set_value("main_config", $main_config)
        unless defined $block->main_config;
});

# an admin request: METHOD PATH [BODY] with the admin key, or %h's
sub api {
    my ($method, $path, $body, %h) = @_;
    my %headers = (Authorization => "Bearer " . (delete $h{auth} // $admin),
                   %h);
    delete $headers{Authorization} if $headers{Authorization} eq 'Bearer none';
    return request("$method /api/admin/$path",
        (defined $body ? (body => ref $body ? json_encode($body) : $body,
                          headers => { 'Content-Type' => 'application/json',
                                       %headers })
                       : (headers => \%headers)));
}

sub login_body {
    my ($name, $password) = @_;
    return 'username=' . form_escape($name) . '&password=' . form_escape($password);
}

sub login {
    my $r = request('POST /auth/token', body => login_body(@_),
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    return $r->{status} == 200 ? json_decode($r->{body})->{access_token} : $r;
}

sub users_dump {
    my ($store) = @_;
    $store //= $ENV{TEST_NGINX_STORE};
    my $out = `mdb_dump -s users '$store' 2>&1`;
    return $? ? "no users: $out" : $out;
}

# the zone's counters, every source, as one canonical text
sub counters { json_encode(json_decode(api('GET', 'stats')->{body})->{sources}) }

sub tasks_done {
    my @done = error_log_text() =~ /complete task #\d+ in thread pool "hashes"/g;
    return scalar @done;
}

sub err { my $r = shift; "$r->{status} " . json_decode($r->{body})->{error} }


run_tests();

__DATA__

=== TEST 1: POST users adds a user, listed and read without its hash, who logs in; DELETE removes it
--- client
my $before = time;
my $c = api('POST', 'users', { name => 'bob', source => 'coding', password => 'bob pass' });
die "POST: $c->{status} $c->{body}" unless $c->{status} == 201;
my $u = json_decode($c->{body});
die "created: $c->{body}" unless $u->{created} >= $before && !defined $u->{last_login}
    && $u->{active} && !exists $u->{hash};
my $list = api('GET', 'users');
die "a hash in the list" if $list->{body} =~ /argon2|hash/;
my @names = map { "$_->{name}:$_->{source}:" . ($_->{active} ? 'active' : 'disabled') }
    @{ json_decode($list->{body})->{users} };
my $t = login('bob', 'bob pass');
die "login: $t->{status}" if ref $t;
my $one = json_decode(api('GET', 'users/bob')->{body});
die "no last_login: " . json_encode($one) unless $one->{last_login} >= $before;
my ($row) = grep { /^bob\t/ } split /\n/, tool('user list');
my $d = api('DELETE', 'users/bob');
my $gone = api('GET', 'users/bob');
my $nologin = login('bob', 'bob pass');
join "\n", "@names", "$u->{name} $u->{source} " . tasks_done(), (split /\t/, $row)[0, 1, 2],
    "$d->{status} $d->{body}", err($gone), $nologin->{status}
--- client_output
alice:chat:active bob:coding:active root:admin:active
bob coding 3
bob
coding
active
200 {"removed":"bob"}
404 there is no user with this name
401
--- error_log
seadragon admin added the user "bob" (source "coding", active)
seadragon admin removed the user "bob"
--- no_error_log
[alert]
[crit]



=== TEST 2: every refusal leaves the users, the counters and the thread pool as they were
--- client
my $alice = login('alice', 'alice pass');
die "alice: $alice->{status}" if ref $alice;
my $dump = users_dump();
my $counters = counters();
my $ok = { name => 'new', source => 'chat', password => 'p' };
my @r = (
    api('POST', 'users', $ok, auth => 'none'),
    api('POST', 'users', $ok, auth => $alice),
    api('POST', 'users', $ok, auth => $coder),
    api('POST', 'users', $ok, auth => 'not-a-key'),
    api('POST', 'users', '{"name":"new",'),
    api('POST', 'users', '[1]'),
    api('POST', 'users', { name => 'alice', source => 'chat', password => 'p' }),
    api('POST', 'users', { name => 'bad name', source => 'chat', password => 'p' }),
    api('POST', 'users', { name => 'x' x 64, source => 'chat', password => 'p' }),
    api('POST', 'users', { name => 'new', source => 'bad.source', password => 'p' }),
    api('POST', 'users', { name => 'new', source => 'chat' }),
    api('POST', 'users', { name => 'new', source => 'chat', password => '' }),
    api('POST', 'users', { name => 'new', source => 'chat', password => 'x' x 1025 }),
    api('POST', 'users', '{"name":"new","source":"chat","password":"a\u0000b"}'),
    api('POST', 'users', { name => 'new', source => 'chat', password => 'p', active => 'yes' }),
    api('POST', 'users', '{"name":"new","source":"chat","password":"' . ('x' x 70000) . '"}'),
    api('POST', 'users', $ok, 'Sec-Fetch-Site' => 'cross-site'),
    api('PATCH', 'users/nobody', { password => 'p' }),
    api('PATCH', 'users/alice', { }),
    api('PATCH', 'users/alice', { password => 'x' x 1025 }),
    api('PATCH', 'users/alice', { active => 1 }),
    api('DELETE', 'users/nobody'),
    api('DELETE', 'users/bad%20name'),
    api('GET', 'users/nobody'),
    api('PUT', 'users/alice', { password => 'p' }),
    api('DELETE', 'users'),
    api('DELETE', 'users/alice', undef, auth => $alice),
);
die "users changed" unless users_dump() eq $dump;
die "counters changed" unless counters() eq $counters;
my $still = login('alice', 'alice pass');
die "alice's password changed" if ref $still;
join "\n", (map { my $e = eval { json_decode($_->{body})->{error} } // $_->{body};
                  "$_->{status} " . substr($e, 0, 40) } @r), 'tasks ' . (tasks_done() - 2)
--- client_output
401 admin key required
403 not an admin user
403 not an admin key
401 invalid admin key
400 Invalid JSON: expected an object
400 Invalid JSON: expected an object
409 a user with this name already exists; re
400 "name" must have 1 to 63 letters, digits
400 "name" must have 1 to 63 letters, digits
400 "source" must be a source name: 1 to 31 
400 "password" is missing: a string of 1 to 
400 "password" must be a string of 1 to 1024
400 "password" must be a string of 1 to 1024
400 a NUL (\u0000) is not allowed in a user'
400 "active" must be true or false
413 the body is too large for an admin reque
403 cross-site admin requests are refused: u
404 there is no user with this name
400 nothing to change: give "password", "act
400 "password" must be a string of 1 to 1024
400 "active" must be true or false
404 there is no user with this name
404 there is no user with this name
404 there is no user with this name
405 read a user with GET, change it with PAT
405 list with GET, add with POST
403 not an admin user
tasks 0
--- no_error_log
[alert]
[crit]
seadragon admin added
seadragon admin changed



=== TEST 3: PATCH password: the old token and the old password are refused, the new password logs in
--- client
user_add('carol', 'admin', 'old pass');
my $t = login('carol', 'old pass');
die "login: $t->{status}" if ref $t;
my $keys = api('GET', 'keys', undef, auth => $t);
select undef, undef, undef, 1.1;    # a password's change is to the second
my $p = api('PATCH', 'users/carol', { password => 'new pass' });
die "PATCH: $p->{status} $p->{body}" unless $p->{status} == 200;
my $old = api('GET', 'keys', undef, auth => $t);
my $me = request('GET /auth/me', headers => { Authorization => "Bearer $t" });
my $oldpw = login('carol', 'old pass');
my $n = login('carol', 'new pass');
die "new login: $n->{status}" if ref $n;
my $again = api('GET', 'keys', undef, auth => $n);
tool('user remove carol');
join "\n", "$keys->{status} " . scalar(@{ json_decode($keys->{body})->{keys} }),
    err($old) . " $old->{headers}{'www-authenticate'}", $me->{status}, $oldpw->{status},
    $again->{status}
--- client_output
200 2
401 invalid login token Bearer
401
401
200
--- error_log
seadragon admin changed the user "carol" (source "admin", active, a new password)
the user is gone or has changed



=== TEST 4: disabled through the API, the next request is refused; enabled, its old tokens stay refused and a new login is served; a new source ends the admin's tokens
--- client
user_add('dave', 'admin', 'dave pass');
my $t = login('dave', 'dave pass');
die "login: $t->{status}" if ref $t;
my $a = api('GET', 'queue', undef, auth => $t);
# a token's iat and the disable's time are whole seconds
select(undef, undef, undef, 1.1);
my $dis = api('PATCH', 'users/dave', { active => JSON::PP::false() });
my $b = api('GET', 'queue', undef, auth => $t);
my $l = login('dave', 'dave pass');
my $en = api('PATCH', 'users/dave', { active => JSON::PP::true() });
my $old = api('GET', 'queue', undef, auth => $t);
my $t1 = login('dave', 'dave pass');
my $c = api('GET', 'queue', undef, auth => $t1);
select(undef, undef, undef, 1.1);
my $src = api('PATCH', 'users/dave', { source => 'chat' });
my $d = api('GET', 'queue', undef, auth => $t1);
my $t2 = login('dave', 'dave pass');
my $e = api('GET', 'queue', undef, auth => $t2);
my ($row) = grep { /^dave\t/ } split /\n/, tool('user list');
tool('user remove dave');
join "\n", $a->{status}, json_decode($dis->{body})->{active} ? 'active' : 'disabled',
    err($b), $l->{status}, err($old), $c->{status}, json_decode($src->{body})->{source},
    err($d), err($e), join(' ', (split /\t/, $row)[1, 2]), 'tasks ' . tasks_done()
--- client_output
200
disabled
401 user disabled
403
401 invalid login token
200
chat
401 invalid login token
403 not an admin user
chat active
tasks 4



=== TEST 5: an admin user's token reaches keys and writes as an admin key does
--- client
my $t = login('root', 'root pass');
die "login: $t->{status}" if ref $t;
my $k = api('POST', 'keys', { name => 'made-by-root', source => 'coding' }, auth => $t);
my $list = api('GET', 'keys', undef, auth => $t);
my $u = api('POST', 'users', { name => 'erin', source => 'chat', password => 'erin pass' }, auth => $t);
my $e = login('erin', 'erin pass');
my $r = api('DELETE', 'users/erin', undef, auth => $t);
my @who;
wait_until(sub { @who = grep { m{ /api/admin/} } split /\n/, access_log_text('who.log'); @who >= 4 },
           'the admin requests logged');
join "\n", join(' ', $k->{status}, (join ',', sort map { $_->{name} } @{ json_decode($list->{body})->{keys} }),
    $u->{status}, (ref $e ? $e->{status} : 'logged-in'), $r->{status}), @who
--- client_output
201 dev,made-by-root,ops 201 logged-in 200
POST /api/admin/keys user=root key=-
GET /api/admin/keys user=root key=-
POST /api/admin/users user=root key=-
DELETE /api/admin/users/erin user=root key=-



=== TEST 6: another client's request is answered while admin hashes wait for the one hashing thread
--- skip_eval: 1: $ENV{TEST_NGINX_USE_VALGRIND}
--- client
my @h = map {
    start_request('POST /api/admin/users',
        body => json_encode({ name => "u$_", source => 'chat', password => "pass $_" }),
        headers => { Authorization => "Bearer $admin",
                     'Content-Type' => 'application/json' })
} 1 .. 3;
wait_until(sub { error_log_text() =~ /(added to thread pool "hashes".*){3}/s },
           'three hashes posted');
my $s = request('GET /static');
die "static: $s->{status}" unless $s->{status} == 200;
my $done = tasks_done();
my @r = wait_all(@h);
die "POST: $_->{status} $_->{body}" for grep { $_->{status} != 201 } @r;
my @order = map { /^\S+ (\S+) / } split /\n/, access_log_text('adm.log');
my ($at) = grep { $order[$_] eq '/static' } 0 .. $#order;
my $l = login('u2', 'pass 2');
api('DELETE', "users/u$_") for 1 .. 3;
($done < 3 ? 'before the hashes' : "after $done hashes") . " | static is "
    . ($at < 3 ? 'not last' : 'last') . ' | ' . (ref $l ? $l->{status} : 'u2 logs in')
--- client_output
before the hashes | static is not last | u2 logs in
--- no_error_log
[alert]



=== TEST 7: a client that leaves during its hash adds no user, and the worker serves the next request
--- client
my $dump = users_dump();
my $h = start_request('POST /api/admin/users',
    body => json_encode({ name => 'gone', source => 'chat', password => 'gone pass' }),
    headers => { Authorization => "Bearer $admin", 'Content-Type' => 'application/json' });
wait_until(sub { error_log_text() =~ /run task #\d+ in thread pool "hashes"/ },
           'the hash runs');
abort_request($h);
wait_until(sub { tasks_done() == 1 }, 'the hash done');
wait_until(sub { access_log_text('adm.log') =~ m{^POST /api/admin/users 499$}m },
           'the request ended as the client left');
my $same = users_dump() eq $dump ? 'unchanged' : 'changed';
my $g = api('GET', 'users/gone');
"$same $g->{status}"
--- client_output
unchanged 404
--- no_error_log
seadragon admin added
[alert]
[crit]



=== TEST 8: a store made before users gets its users database and its secret at the first POST users
--- http_config
    seadragon_store $TEST_NGINX_OLD_STORE;
    seadragon_zone ollama:1m;
--- client
local $ENV{TEST_NGINX_STORE} = $ENV{TEST_NGINX_OLD_STORE};
my $k = tool('key create ops2 --source admin');
my $before = users_dump();
my @r = (api('GET', 'users', undef, auth => $k), api('GET', 'users/x', undef, auth => $k),
         api('DELETE', 'users/x', undef, auth => $k));
die "users made by a read" unless users_dump() eq $before;
my $c = api('POST', 'users', { name => 'first', source => 'chat', password => 'first pass' }, auth => $k);
my $t = login('first', 'first pass');
my $me = request('GET /auth/me', headers => { Authorization => "Bearer " . (ref $t ? 'x' : $t) });
join "\n", ($before =~ /^no users/ ? 'no users database' : 'users'),
    (map { "$_->{status} $_->{body}" } @r), $c->{status},
    json_decode($me->{body})->{name}, (users_dump() =~ /^no users/ ? 'none' : 'users made')
--- client_output
no users database
200 {"users":[]}
404 {"error":"there is no user with this name"}
404 {"error":"there is no user with this name"}
201
first
users made



=== TEST 9: without thread_pool= the admin's hashes run in nginx's default pool
--- main_config
--- config
    location /api/admin/ { seadragon_admin ollama; }
--- client
my $c = api('POST', 'users', { name => 'pooled', source => 'chat', password => 'p' });
api('DELETE', 'users/pooled');
"$c->{status} " . (error_log_text() =~ /complete task #\d+ in thread pool "default"/ ? 'default' : 'elsewhere')
--- client_output
201 default



=== TEST 10: a thread pool that is not declared is nginx's own error
--- config
    location /api/admin/ { seadragon_admin ollama thread_pool=nowhere; }
--- must_die
--- error_log
unknown thread pool "nowhere"



=== TEST 11: thread_pool= needs a name
--- config
    location /api/admin/ { seadragon_admin ollama thread_pool=; }
--- must_die
--- error_log
invalid value "thread_pool=": thread_pool= names a pool
