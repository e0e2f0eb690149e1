# `make run` from a clone in a directory that nginx's workers cannot enter
# (issue 11, finding 18): root's home is 0700, and the workers run as
# nobody.  The clone goes into a new 0700 directory; `make run` must serve
# the curl line it prints (200, a real answer), and `make stop` ends what
# it started, whatever happened.  It uses 127.0.0.1:8080 and 11434, as
# `make run` does: skipped when either is taken.
use strict;
use warnings;
use File::Temp ();
use IO::Socket::INET ();
use Test::More;

plan skip_all => 'make run as root is the case: run as root' if $> != 0;

for my $port (8080, 11434) {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1);
    plan skip_all => "127.0.0.1:$port is taken" if $s;
}

my $repo = $ENV{TEST_NGINX_REPO} // do { require Cwd; Cwd::getcwd() };
my $home = File::Temp->newdir();
is(sprintf('%04o', (stat $home)[2] & 07777), '0700', 'the directory is 0700');
my $clone = "$home/seadragon";

system('git', 'clone', '-q', $repo, $clone) == 0 or die "git clone failed";

my $stopped;
sub stop {
    return if $stopped++;
    my $out = `make -s -C '$clone' stop 2>&1`;
    # the run-time files of this clone, when make run moved them
    if (open my $fh, '<', "$clone/build/run-dir") {
        chomp(my $run = <$fh>);
        system('rm', '-rf', $run) if $run =~ m{^/var/lib/seadragon-run/[^/]+$};
    }
    return $out;
}
END { stop() if $clone && -d $clone }
$SIG{INT} = $SIG{TERM} = sub { stop(); exit 1 };

my $out = `make -s -C '$clone' run 2>&1`;
is($?, 0, 'make run succeeds') or diag $out;
like($out, qr/nginx's workers run as nobody, who cannot enter \Q$home\E \(mode 700\)/,
     'it says why the run-time files move');

my ($curl) = $out =~ /^\s+(curl -N http:\/\/127\.0\.0\.1:8080\/api\/chat .*)$/m;
ok($curl, 'it prints a curl line') or diag $out;

my $answer = `$curl -sS -w '\\n%{http_code}' 2>&1`;
my ($body, $status) = $answer =~ /\A(.*)\n(\d+)\z/s;
is($status, 200, 'the curl line gets 200') or diag $answer;
require JSON::PP;
my @lines = map { JSON::PP::decode_json($_) } grep { /\S/ } split /\n/, $body // '';
ok(@lines > 1 && $lines[-1]{done}, 'a streamed answer that ends with done');
my $text = join '', map { $_->{message}{content} // '' } @lines;
ok(length $text, "it has words: $text");

# the workers of this run's master only: other nginx may run on the host
my @workers;
if (open my $fh, '<', "$clone/build/run-dir") {
    chomp(my $run = <$fh>);
    if (open my $pid, '<', "$run/logs/nginx.pid") {
        chomp(my $master = <$pid>);
        @workers = `ps -o user=,args= --ppid '$master'` =~ /^(\S+)\s+nginx: worker process/mg;
    }
}
ok(@workers && !grep({ $_ ne 'nobody' } @workers), 'the workers run as nobody')
    or diag "@workers";

my $stop = stop();
like($stop, qr/gateway stopped/, 'make stop ends the gateway') or diag $stop;
my $left = IO::Socket::INET->new(PeerAddr => '127.0.0.1:8080', Timeout => 1);
ok(!$left, 'nothing listens on 8080 after make stop');

done_testing();
