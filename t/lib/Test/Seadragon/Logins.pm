package Test::Seadragon::Logins;

use strict;
use warnings;

=head1 NAME

Test::Seadragon::Logins - what the suites of logins (t/054 to t/059) share:
users made with the store tool, the login form's escaping, the store's
users and secrets as mdb_dump prints them, tokens signed by hand, and the
thread pool's completed hashes

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::Seadragon;
    use Test::Seadragon::Logins;

    store_init();
    user_add('alice', 'chat', 'correct horse');   # the password on stdin
    my $body = 'username=' . form_escape($name);   # as a browser escapes it
    my $before = users_dump();                    # every byte of "users"
    my $key = jwt_secret();                       # "jwt_secret"'s 32 bytes
    my $old = jwt_secret('jwt_previous');
    my $retired = jwt_secret_created('jwt_previous');
    my $token = jwt($key, '{"alg":"HS256","typ":"JWT"}', $claims);
    my $n = tasks_done();                         # of the pool "logins"
    my $m = tasks_done('hashes');                 # of another pool

=cut

use Exporter 'import';
use File::Temp ();
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);
use Test::Seadragon ();

our @EXPORT = qw(user_add form_escape users_dump jwt_secret
                 jwt_secret_created jwt tasks_done);

# a user with a password given on standard input, as the tool reads it
sub user_add {
    my ($name, $source, $password) = @_;
    my $file = File::Temp->new();
    print $file "$password\n";
    close $file;
    Test::Seadragon::store_tool("user add $name --source $source < '$file'");
}

# as a browser writes a form's value (application/x-www-form-urlencoded)
sub form_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9_.~-])/$1 eq ' ' ? '+' : sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# the database as mdb_dump prints it: every byte of every record
sub users_dump {
    my $out = `mdb_dump -s users '$ENV{TEST_NGINX_STORE}' 2>&1`;
    die "mdb_dump: $out" if $?;
    return $out;
}

# a secret of "meta" (seadragon_secret_t: version, reserved, created, key)
sub secret_record {
    my ($which) = @_;
    my @lines = split /\n/, `mdb_dump -s meta '$ENV{TEST_NGINX_STORE}'`;
    shift @lines while @lines && $lines[0] ne 'HEADER=END';
    shift @lines;
    while (@lines >= 2) {
        my ($k, $v) = (shift @lines, shift @lines);
        $k =~ s/^ //;
        $v =~ s/^ //;
        return pack('H*', $v) if pack('H*', $k) eq $which;
    }
    die "no $which in the store";
}

# its key, "jwt_secret" unless another is named
sub jwt_secret { substr(secret_record($_[0] // 'jwt_secret'), 16, 32) }

# when it was made (of jwt_previous: when it was retired), unix seconds
sub jwt_secret_created { unpack('q<', substr(secret_record($_[0]), 8, 8)) }

# a token signed by hand with KEY: HEADER and CLAIMS as JSON text
sub jwt {
    my ($key, $header, $claims) = @_;
    my $input = encode_base64url($header) . '.' . encode_base64url($claims);
    return "$input." . encode_base64url(hmac_sha256($input, $key));
}

# the thread pool's completed tasks so far (nginx's debug log)
sub tasks_done {
    my ($pool) = @_;
    $pool //= 'logins';
    my @done = Test::Seadragon::error_log_text()
               =~ /complete task #\d+ in thread pool "\Q$pool\E"/g;
    return scalar @done;
}

1;
