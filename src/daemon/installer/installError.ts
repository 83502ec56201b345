// The installer's failures: one error class with a code per cause and a message a user can act
// on, shared by the source download, the build, and the lock they both take.

export type InstallErrorCode =
  'TOOL_MISSING' | 'TOOLCHAIN_MISSING' | 'SOURCE_FAILED' | 'CONFIGURE_FAILED' | 'BUILD_FAILED' | 'VERIFY_FAILED' | 'LOCK_LOST' | 'ABORTED' | 'BAD_OPTIONS';

/** Every failure a user can meet; `message` is one actionable sentence. */
export class LlamaInstallError extends Error {
  constructor(
    readonly code: InstallErrorCode,
    message: string,
    readonly logPath?: string,
    /** Last lines of the failing tool's output, for display under the message. */
    readonly outputTail?: string,
  ) {
    super(message);
    this.name = 'LlamaInstallError';
  }
}

export function abortedError(what: string): LlamaInstallError {
  return new LlamaInstallError('ABORTED', `${what} was cancelled; run it again to resume where it stopped.`);
}

export type ToolName = 'cmake' | 'git' | 'npm' | 'c++';

/** The one sentence a user sees when a required tool is not installed. */
export function toolMissingMessage(tool: ToolName, platform: NodeJS.Platform = process.platform): string {
  const hint: Record<ToolName, Partial<Record<NodeJS.Platform, string>> & { default: string }> = {
    cmake: {
      linux: 'Debian/Ubuntu: sudo apt-get install cmake; Fedora: sudo dnf install cmake',
      darwin: 'brew install cmake',
      win32: 'winget install Kitware.CMake',
      default: 'see https://cmake.org/download',
    },
    git: {
      linux: 'Debian/Ubuntu: sudo apt-get install git',
      darwin: 'xcode-select --install',
      win32: 'winget install Git.Git',
      default: 'see https://git-scm.com',
    },
    npm: {
      linux: 'Debian/Ubuntu: sudo apt-get install npm',
      darwin: 'brew install node',
      win32: 'winget install OpenJS.NodeJS',
      default: 'install Node.js, which includes npm',
    },
    'c++': {
      linux: 'Debian/Ubuntu: sudo apt-get install g++; Fedora: sudo dnf install gcc-c++',
      darwin: 'xcode-select --install',
      win32: 'install Visual Studio Build Tools with the "Desktop development with C++" workload',
      default: 'install g++ or clang++',
    },
  };
  const h = hint[tool][platform] ?? hint[tool].default;
  const what = tool === 'c++' ? 'A C++ compiler (c++, g++ or clang++, or $CXX)' : `${tool}`;
  return `${what} was not found on PATH: install it (${h}) and retry.`;
}
