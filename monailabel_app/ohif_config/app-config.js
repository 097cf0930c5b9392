/*
 * OHIF v3 configuration of this MONAI Label app (served at /ohif/ in place of the bundle's own).
 *
 * - Images come through the app's DICOMweb proxy (/proxy/dicom/...), so the browser talks to one
 *   origin and needs no CORS set-up.
 * - The MONAI Label mode is the bundle's own, with OHIF's segmentation panel next to the MONAI Label
 *   panel: after Run, correct the segments there and store them with "Export DICOM SEG"; the SEG goes
 *   to the archive through the proxy and the app counts the series as labelled.
 * - The MONAI Label panel's server field starts at the address this viewer was loaded from (the
 *   bundle's default is port 8000 of the same host); a value the user types is kept in a cookie.
 */
(function defaultMonaiLabelServer() {
  if (!/(^|;) ?MONAILABEL_SERVER_URL=[^;]/.test(document.cookie)) {
    document.cookie =
      'MONAILABEL_SERVER_URL=' + escape(window.location.origin + '/') + '; path=/ohif; SameSite=Lax';
  }
})();

const SEGMENTATION_PANEL = '@ohif/extension-cornerstone.panelModule.panelSegmentationWithTools';

/* The bundled mode puts buttons "BrushTools" and "Shapes" into the segmentation panel's toolbox but
 * defines neither (the panel then fails to render); its tool groups hold the cornerstone tools. */
function brushOption(id, toolNames) {
  return [
    {
      name: 'Radius (mm)',
      id: id + '-radius',
      type: 'range',
      min: 0.5,
      max: 50,
      step: 0.5,
      value: 5,
      commands: { commandName: 'setBrushSize', commandOptions: { toolNames } },
    },
    {
      name: 'Shape',
      id: id + '-shape',
      type: 'radio',
      value: toolNames[0],
      values: [
        { value: toolNames[0], label: 'Circle' },
        { value: toolNames[1], label: 'Sphere' },
      ],
      commands: 'setToolActiveToolbar',
    },
  ];
}

const BRUSH_TOOLS = {
  id: 'BrushTools',
  uiType: 'ohif.buttonGroup',
  props: {
    groupId: 'BrushTools',
    items: [
      ['Brush', 'icon-tool-brush', ['CircularBrush', 'SphereBrush']],
      ['Eraser', 'icon-tool-eraser', ['CircularEraser', 'SphereEraser']],
    ].map(([label, icon, toolNames]) => ({
      id: label,
      icon,
      label,
      evaluate: { name: 'evaluate.cornerstone.segmentation', toolNames },
      options: brushOption(label.toLowerCase(), toolNames),
    })),
  },
};

const SHAPES = {
  id: 'Shapes',
  uiType: 'ohif.radioGroup',
  props: {
    label: 'Shapes',
    icon: 'icon-tool-shape',
    evaluate: {
      name: 'evaluate.cornerstone.segmentation',
      toolNames: ['CircleScissor', 'SphereScissor', 'RectangleScissor'],
    },
    options: [
      {
        name: 'Shape',
        id: 'shape-mode',
        type: 'radio',
        value: 'CircleScissor',
        values: [
          { value: 'CircleScissor', label: 'Circle' },
          { value: 'SphereScissor', label: 'Sphere' },
          { value: 'RectangleScissor', label: 'Rectangle' },
        ],
        commands: 'setToolActiveToolbar',
      },
    ],
  },
};

/** The bundle's MONAI Label mode with OHIF's segmentation panel (and its brush, eraser and
 * shapes) after the MONAI Label panel. */
const monaiLabelModeWithSegmentationExport = {
  id: '@ohif/mode-monai-label',
  modeFactory: async ({ modeConfiguration, loadModules }) => {
    const [bundled] = await loadModules(['@ohif/mode-monai-label']);
    const mode = await bundled.modeFactory({ modeConfiguration, loadModules });
    const enter = mode.onModeEnter;
    mode.onModeEnter = args => {
      enter(args);
      const { toolbarService } = args.servicesManager.services;
      toolbarService.addButtons([BRUSH_TOOLS, SHAPES]);
    };
    mode.routes = mode.routes.map(route => ({
      ...route,
      layoutTemplate: args => {
        const layout = route.layoutTemplate(args);
        const panels = layout.props.rightPanels.filter(p => p !== SEGMENTATION_PANEL);
        layout.props.rightPanels = [...panels, SEGMENTATION_PANEL];
        return layout;
      },
    }));
    return mode;
  },
};

window.config = {
  routerBasename: '/ohif/',
  showStudyList: true,
  extensions: [],
  modes: [monaiLabelModeWithSegmentationExport],
  showWarningMessageForCrossOrigin: true,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  defaultDataSourceName: 'dicomweb',
  useSharedArrayBuffer: 'FALSE',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'dicomweb',
      configuration: {
        friendlyName: 'MONAI Label DICOMweb proxy',
        name: 'monailabel',
        wadoUriRoot: '/proxy/dicom/wado',
        qidoRoot: '/proxy/dicom/qido',
        wadoRoot: '/proxy/dicom/wado',
        qidoSupportsIncludeField: true,
        supportsReject: true,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: false,
        supportsFuzzyMatching: true,
        supportsWildcard: true,
        dicomUploadEnabled: true,
        bulkDataURI: {
          enabled: true,
        },
      },
    },
  ],
};
