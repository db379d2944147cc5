<#
.SYNOPSIS
    Open the asnmon dashboard full screen (kiosk) on the lab monitor.

.DESCRIPTION
    Uses Microsoft Edge (present on every Windows 10/11 PC) in kiosk mode;
    Alt+F4 leaves it. With -CreateShortcut, puts a shortcut in the user's
    Startup folder so the dashboard opens at logon, and one on the desktop.

.EXAMPLE
    .\open-dashboard.ps1 -Url http://127.0.0.1:8050/ -CreateShortcut
#>
param(
    [string]$Url = 'http://127.0.0.1:8050/',
    [switch]$CreateShortcut
)
$Edge = @(
    "${env:ProgramFiles(x86)}\Microsoft\Edge\Application\msedge.exe",
    "$env:ProgramFiles\Microsoft\Edge\Application\msedge.exe"
) | Where-Object { Test-Path $_ } | Select-Object -First 1
if (-not $Edge) { throw "Microsoft Edge not found: open $Url in any browser and press F11" }
$EdgeArgs = "--kiosk $Url --edge-kiosk-type=fullscreen --no-first-run"

if ($CreateShortcut) {
    $Shell = New-Object -ComObject WScript.Shell
    foreach ($Folder in @([Environment]::GetFolderPath('Startup'), [Environment]::GetFolderPath('Desktop'))) {
        $Link = $Shell.CreateShortcut((Join-Path $Folder 'asnmon dashboard.lnk'))
        $Link.TargetPath = $Edge
        $Link.Arguments = $EdgeArgs
        $Link.Description = 'asnmon QC dashboard, full screen (Alt+F4 to leave)'
        $Link.Save()
    }
    Write-Host "shortcuts created in Startup and on the desktop"
}
Start-Process -FilePath $Edge -ArgumentList $EdgeArgs
